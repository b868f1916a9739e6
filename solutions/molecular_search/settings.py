"""The molecular search app's own settings, on top of the shared ones."""

from typing import Annotated

from fastapi import Depends
from pydantic import Field

from common import Settings, get_settings


class MoleculeSettings(Settings):
    mol_pool: int = Field(
        5,
        ge=1,
        le=100,
        description="Milvus Lite fallback: candidates searched per result wanted, then "
        "re-ranked by exact Tanimoto.",
    )


# What a route declares to read them: ``settings: Config``.
Config = Annotated[MoleculeSettings, Depends(get_settings)]
