"""The molecular search app's own settings, on top of the shared ones."""

from pydantic import Field

from common.settings import Settings


class MoleculeSettings(Settings):
    mol_pool: int = Field(
        5,
        ge=1,
        le=100,
        description="Milvus Lite fallback: candidates searched per result wanted, then "
        "re-ranked by exact Tanimoto.",
    )
