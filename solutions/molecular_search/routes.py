"""The molecular app's own routes: add, similarity, substructure, depictions, validation."""

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from rdkit import Chem

from common import (
    AddItem,
    Collection,
    Context,
    ErrorResponse,
    ExistingCollection,
    InvalidInput,
    ItemId,
    Responses,
    url_for,
)
from solutions.molecular_search import chem
from solutions.molecular_search.fingerprints import options_of
from solutions.molecular_search.items import MAX_NAME, MAX_SOURCE_ID, Molecule, molecule_codec
from solutions.molecular_search.screen import substructures
from solutions.molecular_search.settings import MoleculeSettings
from solutions.molecular_search.similarity_scan import most_similar
from solutions.molecular_search.sources import MoleculeRow

router = APIRouter(tags=["molecules"])
UNKNOWN: Responses = {404: {"model": ErrorResponse, "description": "Unknown collection or item."}}
INVALID: Responses = {
    422: {"model": ErrorResponse, "description": "Invalid SMILES/SMARTS (RDKit's reason)."}
}
Smiles = Annotated[
    str,
    Field(
        min_length=1,
        max_length=chem.MAX_TEXT_LENGTH,
        description="A SMILES string.",
        examples=["CC(=O)Oc1ccccc1C(=O)O"],
    ),
]


class NewMolecule(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"smiles": "CC(=O)Oc1ccccc1C(=O)O", "name": "Aspirin", "id": "my-001"}]
        }
    )

    smiles: Smiles
    name: str = Field("", max_length=MAX_NAME)
    id: str = Field("", max_length=MAX_SOURCE_ID, description="Your own identifier, if any.")


class SimilarityQuery(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"smiles": "CC(=O)Oc1ccccc1C(=O)O", "top_k": 10, "min_similarity": 0.3}]
        }
    )

    smiles: Smiles
    top_k: int = Field(10, ge=1, le=100)
    min_similarity: float = Field(0.0, ge=0.0, le=1.0, description="Tanimoto, 0 to 1.")


class SubstructureQuery(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"query": "c1ccccc1C(=O)O", "syntax": "smarts", "limit": 50}]
        }
    )

    query: Annotated[str, Field(min_length=1, max_length=chem.MAX_TEXT_LENGTH)]
    syntax: Literal["smarts", "smiles"] = Field(
        "smarts", description="SMARTS (default; plain SMILES are valid SMARTS too) or SMILES."
    )
    limit: int = Field(100, ge=1, le=1000, description="Stop after this many matches.")


class Validation(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"valid": True, "canonical_smiles": "Oc1ccccc1", "reason": None},
                {
                    "valid": False,
                    "canonical_smiles": None,
                    "reason": "Can't kekulize mol.  Unkekulized atoms: 0 1 2 3 4",
                },
            ]
        }
    )

    valid: bool
    canonical_smiles: str | None
    reason: str | None = Field(description="RDKit's reason when the SMILES is invalid.")


ASPIRIN_HIT: dict[str, Any] = {
    "id": "3129808192205955823",
    "similarity": 1.0,
    "smiles": "CC(=O)Oc1ccccc1C(=O)O",
    "name": "Aspirin",
    "source_id": "CHEMBL25",
    "depiction_url": "http://localhost:8000/collections/drugs/items/3129808192205955823/depiction",
    "atoms": [],
}


class MoleculeHit(Molecule):
    """A stored molecule as a result: its id and fields, its drawing, how it matched."""

    model_config = ConfigDict(json_schema_extra={"examples": [ASPIRIN_HIT]})

    id: str
    similarity: float | None = Field(None, description="Exact Tanimoto to the query.")
    depiction_url: str
    atoms: list[int] = Field(default_factory=list, description="Matched atoms (substructure).")


class SimilarityResults(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "mode": "exact: BINARY_VECTOR fingerprints searched with JACCARD on the "
                    "server (BIN_FLAT; BIN_IVF_FLAT where a collection chose it)",
                    "results": [
                        ASPIRIN_HIT,
                        {
                            "id": "3118393317733687116",
                            "similarity": 0.4167,
                            "smiles": "CC(=O)Oc1ccccc1C(=O)Nc1ncc([N+](=O)[O-])s1",
                            "name": "Nitazoxanide",
                            "source_id": "CHEMBL1401",
                            "depiction_url": "http://localhost:8000/collections/drugs/items/"
                            "3118393317733687116/depiction",
                            "atoms": [],
                        },
                    ],
                }
            ]
        }
    )

    mode: str
    results: list[MoleculeHit]


class SubstructureResults(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "screened": 122,
                    "results": [
                        {
                            "id": "5832982546133932898",
                            "similarity": None,
                            "smiles": "CN1CCN(CCCN2c3ccccc3Sc3ccc(C(F)(F)F)cc32)CC1",
                            "name": "Trifluoperazine",
                            "source_id": "CHEMBL422",
                            "depiction_url": "http://localhost:8000/collections/drugs/items/"
                            "5832982546133932898/depiction?highlight=c1ccc2c%28c1%29Sc1ccccc1N2",
                            "atoms": [12, 11, 10, 9, 14, 13, 15, 16, 17, 18, 19, 24, 25, 8],
                        }
                    ],
                    "truncated": True,
                }
            ]
        }
    )

    screened: int = Field(description="Molecules that passed the fingerprint screen.")
    results: list[MoleculeHit] = Field(description="Verified matches, in load order.")
    truncated: bool = Field(description="True if `limit` matches were found before the end.")


def _parse(text: str, syntax: str = "smiles") -> Chem.Mol:
    try:
        return chem.parse_smarts(text) if syntax == "smarts" else chem.parse_smiles(text)
    except chem.InvalidMolecule as error:
        raise InvalidInput(f"invalid {syntax.upper()}: {error}") from error


def _hit(
    request: Request,
    collection: Collection,
    item_id: int,
    record: dict[str, Any],
    similarity: float | None = None,
    atoms: tuple[int, ...] = (),
    highlight: str | None = None,
) -> MoleculeHit:
    url = url_for(request, "get_depiction", name=collection.name, item_id=str(item_id))
    if highlight:
        url += "?" + urlencode({"highlight": highlight})
    shown = Molecule.model_validate(record).model_dump()
    return MoleculeHit(
        **shown, id=str(item_id), similarity=similarity, depiction_url=url, atoms=list(atoms)
    )


class ValidationRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"smiles": "c1ccccc1O"}]})

    smiles: str = Field(max_length=100_000)


@router.post("/molecules/validate", summary="Is this SMILES valid? (for input as you type)")
def validate(body: ValidationRequest) -> Validation:
    """Parse a SMILES with RDKit: its canonical form, or RDKit's reason it is invalid.

    Always 200 (an invalid SMILES is an answer here, not an error); nothing is stored.
    """
    try:
        mol = chem.parse_smiles(body.smiles)
    except chem.InvalidMolecule as error:
        return Validation(valid=False, canonical_smiles=None, reason=str(error))
    return Validation(valid=True, canonical_smiles=chem.canonical_smiles(mol), reason=None)


@router.post(
    "/collections/{name}/similar",
    responses={**UNKNOWN, **INVALID},
    summary="The molecules most similar to a SMILES, by Tanimoto",
)
def similar(
    body: SimilarityQuery,
    collection: ExistingCollection,
    context: Context,
    request: Request,
) -> SimilarityResults:
    """The `top_k` molecules with the highest Tanimoto similarity of their Morgan fingerprints.

    Uses the collection's own fingerprint (radius, bits); `mode` says how this Milvus ranks.
    """
    found = _similar(_parse(body.smiles), body, collection, context)
    return SimilarityResults(
        mode=context.mode,
        results=[
            _hit(request, collection, item_id, record, similarity=round(score, 4))
            for score, item_id, record in found
        ],
    )


def _similar(
    mol: Chem.Mol, body: SimilarityQuery, collection: Collection, context: Context
) -> list[tuple[float, int, dict[str, Any]]]:
    """(Tanimoto, id, record) of the best matches: from Milvus on a server, from the
    in-memory scan on Milvus Lite; exact either way."""
    query = chem.morgan_bits(mol, options_of(collection).fingerprint)
    if collection.spec.index.kind != "binary":
        found = most_similar(query, collection, body.top_k, body.min_similarity)
        records = collection.records([item_id for _, item_id in found])
        return [(score, i, records[i]) for score, i in found if i in records]
    vector = molecule_codec(context.encoder, collection).encode([MoleculeRow("", "", "", mol)])
    matches = collection.search(vector, body.top_k)[0]
    if not matches:
        return []
    # Milvus's JACCARD distance is 1 - Tanimoto in float32: scored again from the bits, so
    # both backends give the same numbers.
    exact = chem.tanimoto(query, [m.record["morgan"] for m in matches])
    ranked = sorted(zip(exact.tolist(), matches, strict=True), key=lambda p: -p[0])
    return [(score, m.id, m.record) for score, m in ranked if score >= body.min_similarity]


@router.post(
    "/collections/{name}/substructure",
    responses={**UNKNOWN, **INVALID},
    summary="Every molecule containing a substructure (SMARTS or SMILES)",
)
def substructure(
    body: SubstructureQuery, collection: ExistingCollection, request: Request
) -> SubstructureResults:
    """Every molecule that contains the query, in load order, up to `limit`.

    Pattern fingerprints screen the collection, then RDKit verifies each candidate.
    """
    screened, found, truncated = substructures(
        _parse(body.query, body.syntax), collection, body.limit
    )
    records = collection.records([i for i, _ in found])
    hits = [
        _hit(request, collection, i, records[i], atoms=atoms, highlight=body.query)
        for i, atoms in found
        if i in records
    ]
    return SubstructureResults(screened=screened, results=hits, truncated=truncated)


@router.head("/collections/{name}/items/{item_id}/depiction", include_in_schema=False)
@router.get(
    "/collections/{name}/items/{item_id}/depiction",
    name="get_depiction",
    response_class=Response,
    responses={
        200: {
            "content": {
                "image/svg+xml": {
                    "example": '<svg xmlns="http://www.w3.org/2000/svg"'
                    ' width="300" height="300">…</svg>'
                }
            }
        },
        **UNKNOWN,
        **INVALID,
    },
    summary="A 2D drawing (SVG), with a substructure highlighted if asked",
)
def depiction(
    collection: ExistingCollection,
    item_id: ItemId,
    highlight: Annotated[
        str | None,
        Query(
            max_length=chem.MAX_TEXT_LENGTH,
            description="SMARTS or SMILES to highlight",
            examples=["C(=O)O"],
        ),
    ] = None,
) -> Response:
    """An SVG drawing of the molecule, drawn by RDKit; `highlight` colours a substructure."""
    mol = _parse(collection.get(item_id)["smiles"])
    atoms = chem.substructure_atoms(mol, _parse(highlight, "smarts")) if highlight else ()
    svg = chem.depict_svg(mol, highlight=atoms)
    return Response(
        svg,
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


def _new_molecule(body: NewMolecule, _settings: MoleculeSettings) -> MoleculeRow:
    mol = _parse(body.smiles)
    return MoleculeRow(
        chem.canonical_smiles(mol), name=body.name or body.id, source_id=body.id, mol=mol
    )


def _added(request: Request, collection: Collection, record: dict[str, Any]) -> MoleculeHit:
    return _hit(request, collection, record["id"], record)


ADD = AddItem(
    body=NewMolecule,
    item=_new_molecule,
    answer=_added,
    response_model=MoleculeHit,
    summary="Add one molecule (creates the collection if needed)",
    description="Store one molecule now, keyed by its canonical SMILES; for many, use a load.",
    errors=INVALID,
    example={**ASPIRIN_HIT, "similarity": None},
)
