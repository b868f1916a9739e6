"""Molecular similarity search declared on the shared layer: fingerprints, sources, routes."""

from pathlib import Path

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

from common.app import create_app
from common.settings import Settings
from common.solution import Solution
from solutions.molecular_search import routes
from solutions.molecular_search.items import (
    Fingerprinter,
    FingerprintOptions,
    collection_spec,
    molecule_codec,
    search_mode,
)
from solutions.molecular_search.settings import MoleculeSettings
from solutions.molecular_search.sources import MoleculeSource

SAMPLE = Path(__file__).parent / "data" / "approved_drugs.csv"

DESCRIPTION = """
Paste a SMILES, get the most similar molecules ranked by **Tanimoto similarity** of their
Morgan fingerprints (ECFP4: radius 2, 2048 bits by default, chosen per collection when it is
created: `POST /collections` with `options`), with 2D drawings; or find every molecule
containing a substructure (SMARTS or SMILES), with the match highlighted.

* **On a Milvus server** fingerprints are `BINARY_VECTOR`s searched with `JACCARD`
  (1 - Jaccard distance is exactly Tanimoto), with `BIN_FLAT` (exact) or, for large
  collections that choose it, `BIN_IVF_FLAT`.
* **On Milvus Lite**, which has no binary vectors, fingerprints are stored as float vectors;
  a pool of candidates found by cosine is re-ranked by exact Tanimoto. `GET /health/ready`
  says which mode this instance runs in.
* Substructure search screens with RDKit pattern fingerprints, then verifies every candidate
  with `HasSubstructMatch`: no false positives.
* Load `.smi`, `.csv` (a `smiles` column, optional `name` and `id`) or `.sdf` files as a
  **job** (`POST /collections/{name}/loads`, 202 at once). A structure is keyed by its
  canonical SMILES: the same molecule written two ways is loaded once.
"""


class MoleculeRecord(BaseModel):
    """What is stored about one molecule (fingerprints omitted)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"smiles": "CC(=O)Oc1ccccc1C(=O)O", "name": "Aspirin", "source_id": "CHEMBL25"}
            ]
        }
    )

    smiles: str
    name: str
    source_id: str


def load_encoder(settings: Settings) -> Fingerprinter:
    return Fingerprinter()


SOLUTION = Solution(
    namespace="molecules",
    title="Molecular similarity search",
    description=DESCRIPTION,
    item_model=MoleculeRecord,
    spec=None,  # each collection's follows from its options: spec_for
    load_encoder=load_encoder,
    codec=molecule_codec,
    parsers=(MoleculeSource(),),
    default_collection="drugs",
    routers=(routes.router,),
    sample_file=SAMPLE,
    settings_model=MoleculeSettings,
    requires=("rdkit",),
    collection_options=FingerprintOptions,
    spec_for=collection_spec,
    mode=search_mode,
    json_items=False,
    openapi_tags=({"name": "molecules", "description": "Similarity, substructure, drawings."},),
)


def create(settings: MoleculeSettings | None = None) -> FastAPI:
    """The molecular search app (for uvicorn: ``solutions.molecular_search.app:create``)."""
    return create_app(SOLUTION, settings)
