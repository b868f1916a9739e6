"""The video app's routes: find the moment by image or by words, list videos, a video's
shots (its storyboard), delete a video; and how its files are served."""

from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from common import (
    AppEncoder,
    Collection,
    ErrorResponse,
    ExistingCollection,
    InvalidInput,
    ItemId,
    MediaKind,
    Responses,
    UnsupportedMediaType,
    url_for,
)
from common.access import WriteAccess
from common.encoders import Encoder
from common.errors import NotFound
from common.files import remove_quietly, store_upload
from common.images import decode_image, for_encoding, refused_as_http
from common.lexical import highlight
from solutions.video_analysis.copies import CopyFound, QueryFrame, find_copies
from solutions.video_analysis.decode import Limits, NotAVideo, VideoRejected, probe
from solutions.video_analysis.indexing import clip_frames
from solutions.video_analysis.items import VideoOptions
from solutions.video_analysis.moments import (
    Found,
    VideoFound,
    frame_moments,
    merged,
    shot_moments,
)
from solutions.video_analysis.people import FACES, name_moments
from solutions.video_analysis.settings import Config, VideoSettings

router = APIRouter(tags=["video"])

MAX_TOP_K = 100
MAX_QUERY = 500
# A words query looks at this many best-matching shots before grouping them by video.
WORD_HITS = 500
MAX_QUERY_PIXELS = 50_000_000
# A copies query looks at this many stored frames per query frame, searched this many
# query frames at a time.
COPY_HITS = 32
COPY_SEARCH_BATCH = 64
UNKNOWN: Responses = {404: {"model": ErrorResponse, "description": "Unknown collection or video."}}
IMAGE_ERRORS: Responses = {
    413: {"model": ErrorResponse, "description": "Over the upload size limit."},
    415: {"model": ErrorResponse, "description": "Not a JPEG, PNG, WebP, BMP or GIF image."},
    422: {"model": ErrorResponse, "description": "Truncated, empty or too many pixels."},
}

MEDIA = {
    "original": MediaKind(
        "Get a video as it was loaded",
        "The video file as loaded (answers `Range` with 206, so players seek).",
        lambda record: str(record["media_type"]),
    ),
    "playable": MediaKind(
        "Get a browser-playable copy of a video",
        "An H.264 MP4 made at load time for a video browsers cannot play as it is "
        "(`playable` false in its record); 404 for videos that play as they are.",
        lambda _record: "video/mp4",
    ),
    "thumbnail": MediaKind(
        "Get the picture of a sampled frame",
        "A JPEG of the frame, at most 320x180 (a shot's keyframe, a moment's best frame).",
        lambda _record: "image/jpeg",
    ),
}

VIDEO_EXAMPLE: dict[str, Any] = {
    "id": "1825351718311361011",
    "name": "harbour.mp4",
    "duration": 30.0,
    "width": 640,
    "height": 360,
    "fps": 25.0,
    "codec": "h264",
    "media_type": "video/mp4",
    "size_bytes": 431102,
    "player_url": "http://localhost:8000/collections/clips/items/1825351718311361011/original",
    "poster_url": "http://localhost:8000/collections/clips/items/1825351718311361011/thumbnail",
}


BASE = "http://localhost:8000/collections/clips/items"
MOMENT_EXAMPLE: dict[str, Any] = {
    "start": 10.0,
    "end": 14.0,
    "score": 0.9856,
    "frame": "5065401511703722119",
    "time": 10.0,
    "thumbnail_url": f"{BASE}/5065401511703722119/thumbnail",
    "tags": None,
    "text": None,
    "names": None,
}
WORDS_MOMENT_EXAMPLE: dict[str, Any] = {
    **MOMENT_EXAMPLE,
    "score": 2.8025,
    "frame": "1673391267411910843",
    "time": 12.0,
    "thumbnail_url": f"{BASE}/1673391267411910843/thumbnail",
    "tags": [{"text": "espresso", "match": True}],
    "text": [],
    "names": [],
}
SHOT_EXAMPLE: dict[str, Any] = {
    "shot": 2,
    "start": 10.0,
    "end": 14.0,
    "keyframe": "1673391267411910843",
    "thumbnail_url": f"{BASE}/1673391267411910843/thumbnail",
    "tags": "espresso",
    "text": "",
}


class Video(BaseModel):
    """A stored video: what the file is and where to play it."""

    model_config = ConfigDict(json_schema_extra={"examples": [VIDEO_EXAMPLE]})

    id: str = Field(description="The video's id (from the file's SHA-256).")
    name: str
    duration: float = Field(description="Seconds.")
    width: int
    height: int
    fps: float = Field(description="Average frames per second (0 if the file does not say).")
    codec: str
    media_type: str = Field(description="Of the original file.")
    size_bytes: int
    player_url: str = Field(description="What a browser plays: the original or its copy.")
    poster_url: str = Field(description="The first frame's picture.")


class Span(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"text": "espresso", "match": True}]})

    text: str
    match: bool = Field(description="A word of the query.")


class Moment(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [MOMENT_EXAMPLE]})

    start: float = Field(description="Seconds from the start of the video.")
    end: float
    score: float = Field(description="Of the best frame in it (cosine, or full-text relevance).")
    frame: str = Field(description="The id of the best-matching sampled frame.")
    time: float = Field(description="That frame's time.")
    thumbnail_url: str
    tags: list[Span] | None = Field(None, description="Words search: the shot's labels.")
    text: list[Span] | None = Field(None, description="Words search: its on-screen text.")
    names: list[Span] | None = Field(
        None, description="Words search: the enrolled person on screen (a person's moment)."
    )


class VideoMoments(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"video": VIDEO_EXAMPLE, "score": 0.9856, "moments": [MOMENT_EXAMPLE]}]
        }
    )

    video: Video
    score: float = Field(description="Of its best moment.")
    moments: list[Moment] = Field(description="In time order.")


class MomentResults(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "results": [
                        {"video": VIDEO_EXAMPLE, "score": 0.9856, "moments": [MOMENT_EXAMPLE]}
                    ]
                },
                {
                    "results": [
                        {"video": VIDEO_EXAMPLE, "score": 2.8025, "moments": [WORDS_MOMENT_EXAMPLE]}
                    ]
                },
            ]
        }
    )

    results: list[VideoMoments] = Field(description="Videos, best first.")


class Shot(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [SHOT_EXAMPLE]})

    shot: int
    start: float
    end: float
    keyframe: str = Field(description="The id of the sampled frame nearest its middle.")
    thumbnail_url: str
    tags: str = Field(description="ImageNet labels of the shot, comma separated.")
    text: str = Field(description="On-screen text read in the shot.")


class Storyboard(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"video": VIDEO_EXAMPLE, "shots": [SHOT_EXAMPLE]}]}
    )

    video: Video
    shots: list[Shot]


SEGMENT_EXAMPLE: dict[str, Any] = {
    "query_start": 3.0,
    "query_end": 14.7,
    "start": 4.5,
    "end": 16.2,
    "score": 0.8127,
    "frames": 13,
}


class CopySegment(BaseModel):
    """A stretch of the query that is a stretch of a stored video."""

    model_config = ConfigDict(json_schema_extra={"examples": [SEGMENT_EXAMPLE]})

    query_start: float = Field(description="Seconds into the query.")
    query_end: float
    start: float = Field(description="Seconds into the stored video.")
    end: float
    score: float = Field(description="Mean cosine similarity of its matched frames.")
    frames: int = Field(description="Sampled query frames matched in it.")


class VideoCopy(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"video": VIDEO_EXAMPLE, "seconds": 11.7, "segments": [SEGMENT_EXAMPLE]}]
        }
    )

    video: Video
    seconds: float = Field(description="Of the query found in this video.")
    segments: list[CopySegment] = Field(description="In the query's time order.")


class CopyResults(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "duration": 14.7,
                    "frames": 15,
                    "results": [
                        {"video": VIDEO_EXAMPLE, "seconds": 11.7, "segments": [SEGMENT_EXAMPLE]}
                    ],
                }
            ]
        }
    )

    duration: float = Field(description="Seconds of the query.")
    frames: int = Field(description="Its sampled frames.")
    results: list[VideoCopy] = Field(description="Videos with the most copied seconds first.")


class VideoList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"videos": [VIDEO_EXAMPLE]}]})

    videos: list[Video]


class Deleted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"video": "1825351718311361011", "frames": 31}]}
    )

    video: str
    frames: int = Field(description="Sampled frames removed with it.")


def _url(request: Request, collection: Collection, item_id: int | str, kind: str) -> str:
    return url_for(request, f"get_{kind}", name=collection.name, item_id=str(item_id))


def video_of(request: Request, collection: Collection, record: dict[str, Any]) -> Video:
    video_id = int(record["video"])
    kind = "original" if record["playable"] else "playable"
    return Video(
        id=str(video_id),
        name=record["video_name"],
        duration=record["duration"],
        width=record["width"],
        height=record["height"],
        fps=record["fps"],
        codec=record["codec"],
        media_type=record["media_type"],
        size_bytes=record["size_bytes"],
        player_url=_url(request, collection, video_id, kind),
        poster_url=_url(request, collection, video_id, "thumbnail"),
    )


def _results(
    request: Request, collection: Collection, found: list[VideoFound], query: str | None = None
) -> MomentResults:
    def moment(found: Found) -> Moment:
        record = found.best.record
        words = query is not None
        return Moment(
            start=round(found.start, 3),
            end=round(found.end, 3),
            score=round(found.score, 4),
            frame=str(found.best.id),
            time=record["time"],
            thumbnail_url=_url(request, collection, found.best.id, "thumbnail"),
            tags=_spans(record["tags"], query) if words else None,
            text=_spans(record["text"], query) if words else None,
            names=_spans(found.name, query) if words else None,
        )

    return MomentResults(
        results=[
            VideoMoments(
                video=video_of(request, collection, v.video),
                score=round(v.score, 4),
                moments=[moment(m) for m in v.moments],
            )
            for v in found
        ]
    )


def _spans(value: str, query: str | None) -> list[Span]:
    return [Span(text=piece, match=hit) for piece, hit in highlight(value, query or "")]


TopVideos = Annotated[
    int, Form(ge=1, le=MAX_TOP_K, description="How many videos, best first.", examples=[5])
]


@router.post(
    "/collections/{name}/moments/by-image",
    summary="Find the moments that look like an image",
    responses={**UNKNOWN, **IMAGE_ERRORS},
)
def moments_by_image(
    collection: ExistingCollection,
    settings: Config,
    encoder: AppEncoder,
    request: Request,
    file: Annotated[UploadFile, File(description="The query picture.")],
    top_k: TopVideos = 10,
    min_score: Annotated[
        float | None,
        Form(
            ge=-1.0,
            le=1.0,
            description="Cosine similarity a sampled frame needs to be part of a moment "
            "(default `SEARCH_VIDEO_MOMENT_SCORE`).",
            examples=[0.75],
        ),
    ] = None,
) -> MomentResults:
    """Videos with frames like the uploaded picture, ranked by their best frame; each with
    its **moments**: runs of adjacent sampled frames at or above `min_score`, as start-end
    times. The picture is not stored.

    ```
    curl -F file=@harbour.jpg localhost:8000/collections/clips/moments/by-image
    ```
    """
    picture = _query_picture(file)
    vector = np.asarray(encoder.encode([picture]))[0]
    threshold = settings.video_moment_score if min_score is None else min_score
    matches, _ = collection.search_above(vector, threshold)
    return _results(request, collection, frame_moments(matches, top_k))


def _query_picture(upload: UploadFile) -> Image.Image:
    with refused_as_http():
        decoded = decode_image(upload.file.read(), max_pixels=MAX_QUERY_PIXELS)
    return for_encoding(decoded.image)


@router.get(
    "/collections/{name}/moments/by-words",
    summary="Find the moments whose labels or on-screen text have these words",
    responses={**UNKNOWN, 422: {"model": ErrorResponse, "description": "No words to search."}},
)
def moments_by_words(
    collection: ExistingCollection,
    request: Request,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=MAX_QUERY,
            description="Words; punctuation and search operators are ordinary characters.",
            examples=["espresso"],
        ),
    ],
    top_k: Annotated[
        int, Query(ge=1, le=MAX_TOP_K, description="How many videos.", examples=[5])
    ] = 10,
) -> MomentResults:
    """Shots whose labels (ImageNet classes of their frames) or on-screen text share words
    with `q`, as moments (the shot's start-end); and the spans of time an enrolled person
    whose name shares words with `q` is on screen. Grouped by video; the matching words are
    marked in `tags`, `text` and `names`. Scores are the record database's full-text
    relevance.

    ```
    curl 'localhost:8000/collections/clips/moments/by-words?q=espresso'
    ```
    """
    shots = shot_moments(collection.lexical_search(q, WORD_HITS), WORD_HITS)
    if collection.has_companion(FACES):
        shots += name_moments(collection, collection.companion(FACES), q)
    return _results(request, collection, merged(shots, top_k), query=q)


@router.get("/collections/{name}/videos", summary="List the stored videos", responses=UNKNOWN)
def list_videos(
    collection: ExistingCollection,
    request: Request,
    offset: Annotated[int, Query(ge=0, le=10**9, description="Videos to skip.", examples=[0])] = 0,
    limit: Annotated[
        int, Query(ge=1, le=1000, description="At most this many.", examples=[20])
    ] = 100,
) -> VideoList:
    """Videos in the order they were stored."""
    heads = collection.where(
        {"frame": 0}, order_by=("created_at", "id"), offset=offset, limit=limit
    )
    return VideoList(videos=[video_of(request, collection, record) for record in heads])


def _frames(collection: Collection, video_id: int) -> list[dict[str, Any]]:
    frames = collection.where({"video": video_id}, order_by=("frame",))
    if not frames:
        raise NotFound(f"no video {video_id} in collection {collection.name!r}")
    return frames


@router.get(
    "/collections/{name}/videos/{video_id}",
    summary="Get a video and its shots (its storyboard)",
    responses=UNKNOWN,
)
def get_video(collection: ExistingCollection, video_id: ItemId, request: Request) -> Storyboard:
    """The video, and each shot with its times, keyframe picture and words."""
    frames = _frames(collection, video_id)
    shots = [
        Shot(
            shot=f["shot"],
            start=f["shot_start"],
            end=f["shot_end"],
            keyframe=str(f["id"]),
            thumbnail_url=_url(request, collection, f["id"], "thumbnail"),
            tags=f["tags"],
            text=f["text"],
        )
        for f in frames
        if f["keyframe"]
    ]
    return Storyboard(video=video_of(request, collection, frames[0]), shots=shots)


@router.delete(
    "/collections/{name}/videos/{video_id}",
    dependencies=[WriteAccess],
    summary="Delete a video",
    responses=UNKNOWN,
)
def delete_video(collection: ExistingCollection, video_id: ItemId) -> Deleted:
    """Remove the video, its sampled frames, its faces and its files from both stores."""
    ids = [int(f["id"]) for f in _frames(collection, video_id)]
    removed = collection.delete(ids)
    # Its frames first: the video is gone once they are (a crash in between leaves faces
    # the next start removes).
    if collection.has_companion(FACES):
        faces = collection.companion(FACES)
        faces.delete([int(f["id"]) for f in faces.where({"video": video_id})])
    return Deleted(video=str(video_id), frames=len(removed))


CopyScore = Annotated[
    float | None,
    Field(
        ge=-1.0,
        le=1.0,
        description="Cosine similarity a query frame needs to count as copied footage "
        "(default `SEARCH_VIDEO_COPY_SCORE`).",
        examples=[0.6],
    ),
]


@router.post(
    "/collections/{name}/copies",
    summary="Find the stored videos that contain a clip's footage",
    responses={
        **UNKNOWN,
        413: {"model": ErrorResponse, "description": "Over the upload size limit."},
        415: {"model": ErrorResponse, "description": "Not a video."},
        422: {"model": ErrorResponse, "description": "Damaged, or over the limits for a query."},
    },
)
def copies_of_clip(
    collection: ExistingCollection,
    settings: Config,
    encoder: AppEncoder,
    request: Request,
    file: Annotated[UploadFile, File(description="The query clip (any format a load takes).")],
    top_k: TopVideos = 10,
    min_score: Annotated[float | None, Form(ge=-1.0, le=1.0, examples=[0.6])] = None,
) -> CopyResults:
    """Stored videos that contain footage of the uploaded clip, even re-encoded, resized,
    with borders cropped or at another frame rate: each with its **aligned segments**
    (query start-end is stored start-end). The clip is sampled as loads sample (the
    collection's `frame_interval`) and is not stored; it may run at most
    `SEARCH_VIDEO_QUERY_MAX_SECONDS` (load longer videos and ask for their copies).

    ```
    curl -F file=@excerpt.mp4 localhost:8000/collections/clips/copies
    ```
    """
    interval = VideoOptions.model_validate(collection.options).frame_interval
    path = store_upload(file.file, settings.upload_dir, "", settings.max_upload_bytes)
    try:
        query, vectors = _clip(path, settings, interval, encoder)
    finally:
        remove_quietly(path)
    return _copies(request, collection, settings, query, vectors, top_k, min_score, None)


def _clip(
    path: Path, settings: VideoSettings, interval: float, encoder: Encoder
) -> tuple[list[QueryFrame], np.ndarray]:
    limits = Limits(settings.video_max_pixels, settings.video_query_max_seconds)
    try:
        return clip_frames(path, probe(path, limits), limits, interval, encoder)
    except NotAVideo as error:
        raise UnsupportedMediaType(str(error)) from error
    except VideoRejected as error:
        raise InvalidInput(str(error)) from error


@router.get(
    "/collections/{name}/videos/{video_id}/copies",
    summary="Find the other stored videos that contain a video's footage",
    responses=UNKNOWN,
)
def copies_of_video(
    collection: ExistingCollection,
    video_id: ItemId,
    settings: Config,
    request: Request,
    top_k: Annotated[
        int, Query(ge=1, le=MAX_TOP_K, description="How many videos.", examples=[5])
    ] = 10,
    min_score: Annotated[CopyScore, Query()] = None,
) -> CopyResults:
    """As `POST /collections/{name}/copies`, with a stored video as the query (its own
    frames are not matched): the other videos that share footage with it, aligned."""
    frames = _frames(collection, video_id)
    stored = collection.vectors([int(f["id"]) for f in frames])
    frames = [f for f in frames if int(f["id"]) in stored]
    query = [QueryFrame(float(f["time"]), float(f["until"])) for f in frames]
    vectors = np.asarray([stored[int(f["id"])] for f in frames], dtype=np.float32)
    return _copies(request, collection, settings, query, vectors, top_k, min_score, video_id)


def _copies(
    request: Request,
    collection: Collection,
    settings: VideoSettings,
    query: list[QueryFrame],
    vectors: np.ndarray,
    top_k: int,
    min_score: float | None,
    exclude: int | None,
) -> CopyResults:
    where_not = {"video": exclude} if exclude is not None else None
    matches = []
    for start in range(0, len(query), COPY_SEARCH_BATCH):
        batch = vectors[start : start + COPY_SEARCH_BATCH]
        matches.extend(collection.search(batch, COPY_HITS, where_not=where_not))
    interval = VideoOptions.model_validate(collection.options).frame_interval
    threshold = settings.video_copy_score if min_score is None else min_score
    found = find_copies(query, matches, interval, threshold, top_k)
    return CopyResults(
        duration=round(query[-1].until if query else 0.0, 3),
        frames=len(query),
        results=[_copy(request, collection, copy) for copy in found],
    )


def _copy(request: Request, collection: Collection, copy: CopyFound) -> VideoCopy:
    return VideoCopy(
        video=video_of(request, collection, copy.video),
        seconds=round(copy.seconds, 3),
        segments=[
            CopySegment(
                query_start=round(s.query_start, 3),
                query_end=round(s.query_end, 3),
                start=round(s.start, 3),
                end=round(s.end, 3),
                score=round(s.score, 4),
                frames=s.frames,
            )
            for s in copy.segments
        ],
    )
