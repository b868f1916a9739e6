"""The molecular search app's own settings, on top of the shared ones."""

from pydantic import Field

from common.settings import Settings


class MoleculeSettings(Settings):
    mol_radius: int = Field(2, ge=1, le=4, description="Morgan radius (2 = ECFP4).")
    mol_bits: int = Field(2048, ge=64, le=8192, multiple_of=8, description="Fingerprint bits.")
    mol_pool: int = Field(
        5,
        ge=1,
        le=100,
        description="Milvus Lite fallback: candidates searched per result wanted, then "
        "re-ranked by exact Tanimoto.",
    )
