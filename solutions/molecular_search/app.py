"""Molecular similarity search declared on the shared layer: fingerprints, sources, routes."""

from pathlib import Path
from typing import cast

from fastapi import FastAPI
from pydantic import BaseModel

from common.app import create_app
from common.settings import Settings
from common.solution import Solution
from solutions.molecular_search import routes
from solutions.molecular_search.chem import DEFAULT_SPEC, FingerprintSpec
from solutions.molecular_search.items import (
    Fingerprinter,
    collection_spec,
    configure,
    molecule_codec,
)
from solutions.molecular_search.settings import MoleculeSettings
from solutions.molecular_search.sources import MoleculeSource

SAMPLE = Path(__file__).parent / "data" / "approved_drugs.csv"

DESCRIPTION = """
Paste a SMILES, get the most similar molecules ranked by **Tanimoto similarity** of their
Morgan fingerprints (ECFP4: radius 2, 2048 bits by default), with 2D drawings; or find every
molecule containing a substructure (SMARTS or SMILES), with the match highlighted.

* **On a Milvus server** fingerprints are `BINARY_VECTOR`s searched with `JACCARD`
  (1 - Jaccard distance is exactly Tanimoto).
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

    smiles: str
    name: str
    source_id: str


def load_encoder(settings: Settings) -> Fingerprinter:
    # create_app guarantees the settings are this app's MoleculeSettings.
    mine = cast(MoleculeSettings, settings)
    return Fingerprinter(FingerprintSpec(radius=mine.mol_radius, bits=mine.mol_bits))


SOLUTION = Solution(
    namespace="molecules",
    title="Molecular similarity search",
    description=DESCRIPTION,
    item_model=MoleculeRecord,
    spec=collection_spec(DEFAULT_SPEC, binary=True),
    load_encoder=load_encoder,
    codec=molecule_codec,
    parsers=(MoleculeSource(),),
    default_collection="drugs",
    routers=(routes.router,),
    sample_file=SAMPLE,
    settings_model=MoleculeSettings,
    requires=("rdkit",),
    configure=configure,
    json_items=False,
    openapi_tags=({"name": "molecules", "description": "Similarity, substructure, drawings."},),
)


def create(settings: MoleculeSettings | None = None) -> FastAPI:
    """The molecular search app (for uvicorn: ``solutions.molecular_search.app:create``)."""
    return create_app(SOLUTION, settings)
