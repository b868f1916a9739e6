"""The video app's own settings, on top of the shared ones."""

from pathlib import Path
from typing import Annotated

from fastapi import Depends
from pydantic import Field

from common import Settings, get_settings


class VideoSettings(Settings):
    max_upload_bytes: int = Field(
        1024 * 1024 * 1024, gt=0, description="Largest request body (videos are big)."
    )
    body_timeout_s: float = Field(
        1800,
        gt=0,
        le=86_400,
        description="Seconds a client has to send a whole request body (1 GiB at 0.6 MB/s).",
    )
    video_max_pixels: int = Field(
        3840 * 2160,
        gt=0,
        description="Videos with larger frames (width x height) are refused: 4K UHD passes, "
        "8K and streams claiming absurd sizes do not.",
    )
    video_max_seconds: float = Field(
        3 * 3600.0, gt=0, description="Videos running longer are refused."
    )
    video_moment_score: float = Field(
        0.75,
        ge=-1.0,
        le=1.0,
        description="Default cosine similarity a sampled frame needs to be part of a moment "
        "found by image.",
    )
    video_copy_score: float = Field(
        0.6,
        ge=-1.0,
        le=1.0,
        description="Default cosine similarity a query frame needs to count as copied "
        "footage (a copy re-encoded, resized and cropped keeps 0.65-0.8; other videos "
        "stay below 0.55; see the README).",
    )
    video_query_max_seconds: float = Field(
        600.0, gt=0, description="Longest clip accepted as a copies query (load longer ones)."
    )
    video_playable_height: int = Field(
        720, ge=144, le=2160, description="Height of the H.264 copy made of unplayable videos."
    )
    video_model_dir: Path = Field(
        Path("./data/models"), description="Where the ONNX export of the image encoder is cached."
    )


# What a route declares to read them: ``settings: Config``.
Config = Annotated[VideoSettings, Depends(get_settings)]
