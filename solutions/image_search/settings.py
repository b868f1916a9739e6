"""The image search app's own settings, on top of the shared ones."""

from pathlib import Path
from typing import Annotated

from fastapi import Depends
from pydantic import Field

from common import Settings, get_settings


class ImageSettings(Settings):
    image_max_pixels: int = Field(
        50_000_000, gt=0, description="Larger images are refused (decompression bombs)."
    )
    image_near_duplicate_score: float = Field(
        0.6, ge=0.0, le=1.0, description="Default cosine similarity for near-duplicates."
    )
    image_archive_max_bytes: int = Field(
        4 * 1024**3, gt=0, description="Most bytes read out of one zip archive."
    )
    image_archive_max_files: int = Field(100_000, gt=0, description="Most files in one zip.")
    image_model_dir: Path = Field(
        Path("./data/models"), description="Where the ONNX export of the encoder is cached."
    )


# What a route declares to read them: ``settings: Config``.
Config = Annotated[ImageSettings, Depends(get_settings)]
