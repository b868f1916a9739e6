"""Molecular similarity search declared on the shared layer: fingerprints, loads, routes."""

from pathlib import Path

from fastapi import FastAPI

from common import (
    Solution,
    collections_router,
    create_app,
    file_loader,
    health_router,
    items_router,
    jobs_router,
    loads_router,
)
from solutions.molecular_search import routes
from solutions.molecular_search.fingerprints import (
    Fingerprinter,
    FingerprintOptions,
    fingerprint_index,
    search_mode,
)
from solutions.molecular_search.items import MoleculeRecord, molecule_codec
from solutions.molecular_search.settings import MoleculeSettings
from solutions.molecular_search.sources import MoleculeSource

HERE = Path(__file__).parent
SAMPLE = HERE / "data" / "approved_drugs.csv"

DESCRIPTION = """
Paste a SMILES, get the most similar molecules ranked by **Tanimoto similarity** of their
Morgan fingerprints (ECFP4: radius 2, 2048 bits by default, chosen per collection when it is
created: `POST /collections` with `options`), with 2D drawings; or find every molecule
containing a substructure (SMARTS or SMILES), with the match highlighted.

* **On a Milvus server** fingerprints are `BINARY_VECTOR`s searched with `JACCARD`
  (1 - Jaccard distance is exactly Tanimoto), with `BIN_FLAT` (exact) or, for large
  collections that choose it, `BIN_IVF_FLAT`.
* **On Milvus Lite**, which has no binary vectors, the app scans every stored fingerprint in
  memory (packed bits, numpy popcount): exact Tanimoto too. `GET /health/ready` says which
  mode this instance runs in.
* Substructure search screens with RDKit pattern fingerprints, then verifies every candidate
  with `HasSubstructMatch`: no false positives.
* Load `.smi`, `.csv` (a `smiles` column, optional `name` and `id`) or `.sdf` files as a
  **job** (`POST /collections/{name}/loads`, 202 at once). A structure is keyed by its
  canonical SMILES: the same molecule written two ways is loaded once.
"""


LOADER = file_loader(MoleculeSource(), sample=SAMPLE)

SOLUTION = Solution(
    namespace="molecules",
    title="Molecular similarity search",
    description=DESCRIPTION,
    settings_model=MoleculeSettings,
    record=MoleculeRecord,
    index=fingerprint_index,  # each collection's follows from its options
    load_encoder=lambda _settings: Fingerprinter(),
    codec=molecule_codec,
    loader=LOADER,
    routers=(
        routes.router,
        collections_router(FingerprintOptions),
        items_router(MoleculeRecord, routes.ADD),
        loads_router(LOADER, example="library.sdf"),
        jobs_router,
        health_router,
    ),
    default_collection="drugs",
    collection_options=FingerprintOptions,
    mode=search_mode,
    requires=("rdkit",),
    openapi_tags=({"name": "molecules", "description": "Similarity, substructure, drawings."},),
    page=HERE / "page.js",
)


def create(settings: MoleculeSettings | None = None) -> FastAPI:
    """The molecular search app (for uvicorn: ``solutions.molecular_search.app:create``)."""
    return create_app(SOLUTION, settings)
