"""The image app's own routes: loads of files, zips and folders; search; media by id."""

import dataclasses
import functools
import json
import uuid
from pathlib import PurePath
from typing import Annotated, Any, cast

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from common.api.loads import LoadSource, accept, queued
from common.collection import Collection, Match
from common.context import (
    AppContext,
    AppEncoder,
    CollectionName,
    Context,
    ExistingCollection,
    ItemId,
)
from common.errors import InvalidInput, NotFound, UnsupportedMediaType
from common.files import remove_quietly, resolve_under_roots, store_upload
from common.http import ErrorResponse, json_example, url_for
from common.jobs import Job
from common.loading import add_one
from solutions.image_search.images import ImageRejected, NotAnImage
from solutions.image_search.items import MAX_LABEL, MEDIA_TYPES, ImageFile, image_codec, read_image
from solutions.image_search.settings import ImageSettings
from solutions.image_search.sources import MANIFEST, ImageSource

router = APIRouter(tags=["images"])

IMMUTABLE = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
}
MAX_TOP_K = 100
ACCEPTED = "The load is accepted; follow it at `Location` (`GET /jobs/{id}`) or its `/events`."
IMAGE_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorResponse, "description": "Over the upload size limit."},
    415: {"model": ErrorResponse, "description": "Not a JPEG, PNG, WebP, BMP or GIF image."},
    422: {"model": ErrorResponse, "description": "Truncated, empty or too many pixels."},
}
UNKNOWN = {404: {"model": ErrorResponse, "description": "Unknown collection or item."}}

LabelForm = Annotated[
    str | None,
    Form(
        max_length=MAX_LABEL,
        description="Stored with every image; filter searches by it.",
        examples=["cats"],
    ),
]
LabelFilterForm = Annotated[
    str | None,
    Form(max_length=MAX_LABEL, description="Only images with this label.", examples=["photos"]),
]
TopK = Annotated[int, Form(ge=1, le=MAX_TOP_K, description="How many results.", examples=[3])]
LabelFilter = Annotated[
    str | None,
    Query(max_length=MAX_LABEL, description="Only images with this label.", examples=["photos"]),
]
CAT = {
    "id": "3208492252864466253",
    "score": 0.9338,
    "filename": "photos/chelsea_the_cat.jpg",
    "label": "photos",
    "format": "JPEG",
    "width": 451,
    "height": 300,
    "thumbnail_url": "http://localhost:8000/collections/photos/items/3208492252864466253/thumbnail",
    "original_url": "http://localhost:8000/collections/photos/items/3208492252864466253/original",
}
ROCKET = {
    **CAT,
    "id": "7357220017838863122",
    "score": 0.1238,
    "filename": "photos/rocket.jpg",
    "width": 640,
    "height": 427,
    "thumbnail_url": "http://localhost:8000/collections/photos/items/7357220017838863122/thumbnail",
    "original_url": "http://localhost:8000/collections/photos/items/7357220017838863122/original",
}


class ImageHit(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [CAT]})

    id: str
    score: float = Field(description="Cosine similarity to the query image, -1 to 1.")
    filename: str
    label: str
    format: str
    width: int
    height: int
    thumbnail_url: str
    original_url: str


class SearchResults(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"results": [CAT, ROCKET]}]})

    results: list[ImageHit]


class Duplicates(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"min_score": 0.6, "results": [CAT], "truncated": False}]}
    )

    min_score: float
    results: list[ImageHit] = Field(description="Every stored image at or above `min_score`.")
    truncated: bool = Field(description="True if there may be more than were returned.")


class PathLoad(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"path": "holiday", "label": None}]})

    path: str = Field(description="A file, zip or folder below a data root.", examples=["photos"])
    label: str | None = Field(
        None, max_length=MAX_LABEL, description="Overrides the folder each image was found in."
    )


def _settings(context: AppContext) -> ImageSettings:
    return cast(ImageSettings, context.settings)


def _hits(request: Request, collection: Collection, matches: list[Match]) -> list[ImageHit]:
    def url(item_id: ItemId, kind: str) -> str:
        return url_for(request, f"get_{kind}", name=collection.name, item_id=str(item_id))

    return [
        ImageHit(
            id=str(m.id),
            score=round(m.score, 4),
            filename=m.record["filename"],
            label=m.record["label"],
            format=m.record["format"],
            width=m.record["width"],
            height=m.record["height"],
            thumbnail_url=url(m.id, "thumbnail"),
            original_url=url(m.id, "original"),
        )
        for m in matches
    ]


async def _query_image(upload: UploadFile, settings: ImageSettings) -> ImageFile:
    data = await upload.read()
    try:
        return await run_in_threadpool(
            read_image, data, upload.filename or "query", "", max_pixels=settings.image_max_pixels
        )
    except NotAnImage as error:
        raise UnsupportedMediaType(str(error)) from error
    except ImageRejected as error:
        raise InvalidInput(str(error)) from error


@router.post(
    "/collections/{name}/loads",
    status_code=202,
    response_description=ACCEPTED,
    summary="Load uploaded images or zip archives as a job",
    responses={**queued("mine.zip"), **IMAGE_ERRORS},
)
async def load_uploads(
    name: CollectionName,
    context: Context,
    request: Request,
    response: Response,
    files: Annotated[list[UploadFile], File(description="Images, or zips of images.")],
    label: LabelForm = None,
) -> Job:
    """Upload images and zips of images (repeat `files`); they load in the background.

    Answers **202** at once with the job. An image in a zip folder gets the folder as its
    label unless `label` is given. Files that are not images are listed in the job's errors.

    ```
    curl -F files=@mine.zip -F files=@cat.jpg localhost:8000/collections/mine/loads
    ```
    """
    settings = _settings(context)
    folder = settings.upload_dir / uuid.uuid4().hex
    names: dict[str, str] = {}
    try:
        for upload in files:
            suffix = PurePath(upload.filename or "").suffix.lower()
            if suffix not in ImageSource.suffixes:
                raise UnsupportedMediaType(
                    f"cannot load {upload.filename!r}; supported: {', '.join(ImageSource.suffixes)}"
                )
            stored = await run_in_threadpool(
                store_upload, upload.file, folder, suffix, settings.max_upload_bytes
            )
            names[stored.name] = PurePath(upload.filename or stored.name).name
        (folder / MANIFEST).write_text(json.dumps(names))
    except BaseException:
        remove_quietly(folder)
        raise
    shown = next(iter(names.values())) if len(names) == 1 else f"{len(names)} files"
    source = LoadSource(shown, folder, ImageSource(settings, label), is_upload=True)
    return await accept(request, response, context, name, source)


@router.post(
    "/collections/{name}/loads/path",
    status_code=202,
    response_description=ACCEPTED,
    summary="Load an image, zip or folder (recursively) below a data root",
    responses={
        **queued("holiday"),
        403: {"model": ErrorResponse, "description": "Outside the data roots."},
        404: {"model": ErrorResponse, "description": "No such file."},
        **IMAGE_ERRORS,
    },
)
async def load_path(
    name: CollectionName, body: PathLoad, context: Context, request: Request, response: Response
) -> Job:
    """Read images the server already has: one file, a zip, or a folder and its subfolders.

    Only paths below `SEARCH_DATA_ROOTS` are allowed. Answers **202** with the job at once.
    """
    settings = _settings(context)
    path = await run_in_threadpool(resolve_under_roots, body.path, settings.data_roots)
    if path.is_file() and path.suffix.lower() not in ImageSource.suffixes:
        raise UnsupportedMediaType(f"cannot load {path.suffix or 'a file without a suffix'}")
    source = LoadSource(body.path, path, ImageSource(settings, body.label))
    return await accept(request, response, context, name, source)


@router.post(
    "/collections/{name}/loads/sample",
    status_code=202,
    response_description=ACCEPTED,
    summary="Load this app's sample photos",
    responses=queued("sample"),
)
async def load_sample(
    name: CollectionName, context: Context, request: Request, response: Response
) -> Job:
    """Load the 16 photos this app ships with into any collection, as a job (202 at once)."""
    sample = context.solution.sample_file
    if sample is None:
        raise NotFound("this app ships no sample data")
    source = LoadSource("sample", sample, ImageSource(_settings(context)))
    return await accept(request, response, context, name, source)


@router.post(
    "/collections/{name}/items",
    status_code=201,
    summary="Add one image",
    responses={
        201: json_example({**CAT, "score": 1.0}),
        409: {"model": ErrorResponse, "description": "Already stored."},
        **IMAGE_ERRORS,
    },
)
async def add_image(
    name: CollectionName,
    context: Context,
    request: Request,
    file: Annotated[UploadFile, File(description="One image.")],
    label: LabelForm = None,
) -> ImageHit:
    """Store one image now (for many, use a load); its id comes from the file's bytes.

    ```
    curl -F file=@cat.jpg -F label=cats localhost:8000/collections/mine/items
    ```
    """
    image = await _query_image(file, _settings(context))
    image = dataclasses.replace(image, label=label or "")
    collection, record = await run_in_threadpool(
        add_one, context.collections, name, functools.partial(image_codec, context.encoder), image
    )
    return _hits(request, collection, [Match(record["id"], 1.0, record)])[0]


@router.post(
    "/collections/{name}/search",
    summary="Find the images most like an uploaded one",
    responses={**UNKNOWN, **IMAGE_ERRORS},
)
async def search(
    collection: ExistingCollection,
    context: Context,
    encoder: AppEncoder,
    request: Request,
    file: Annotated[UploadFile, File(description="The query.")],
    top_k: TopK = 10,
    label: LabelFilterForm = None,
) -> SearchResults:
    """The `top_k` stored images most like the uploaded one, by cosine similarity.

    The query is not stored. `label` keeps only images with that label.

    ```
    curl -F file=@cat.jpg -F top_k=3 localhost:8000/collections/photos/search
    ```
    """
    image = await _query_image(file, _settings(context))
    vectors = await run_in_threadpool(encoder.encode, [image.picture])
    where = {"label": label} if label is not None else None
    matches = (await run_in_threadpool(collection.search, vectors, top_k, where))[0]
    return SearchResults(results=_hits(request, collection, matches))


@router.get(
    "/collections/{name}/items/{item_id}/similar",
    responses=UNKNOWN,
    summary="More like this: the images most like a stored one (itself excluded)",
)
async def similar(
    collection: ExistingCollection,
    item_id: ItemId,
    request: Request,
    top_k: Annotated[
        int, Query(ge=1, le=MAX_TOP_K, description="How many results.", examples=[3])
    ] = 10,
    label: LabelFilter = None,
) -> SearchResults:
    """The `top_k` images most like a stored one, by cosine similarity; never itself."""
    vector = await run_in_threadpool(collection.vector, item_id)
    where = {"label": label} if label is not None else None
    matches = (await run_in_threadpool(collection.search, [vector], top_k + 1, where))[0]
    others = [m for m in matches if m.id != item_id][:top_k]
    return SearchResults(results=_hits(request, collection, others))


MinScoreForm = Annotated[
    float | None,
    Form(
        ge=0.0,
        le=1.0,
        description=(
            "Cosine similarity at or above which an image counts as a near-duplicate; "
            "defaults to SEARCH_IMAGE_NEAR_DUPLICATE_SCORE."
        ),
        examples=[0.6],
    ),
]


@router.post(
    "/collections/{name}/duplicates",
    responses={**UNKNOWN, **IMAGE_ERRORS},
    summary="Every stored copy, crop or re-encode of an uploaded image",
)
async def duplicates_of_upload(
    collection: ExistingCollection,
    context: Context,
    encoder: AppEncoder,
    request: Request,
    file: Annotated[UploadFile, File(description="The image.")],
    min_score: MinScoreForm = None,
) -> Duplicates:
    """Every stored image at or above `min_score` similarity to the uploaded one.

    ```
    curl -F file=@cat_crop.jpg localhost:8000/collections/photos/duplicates
    ```
    """
    image = await _query_image(file, _settings(context))
    vector = (await run_in_threadpool(encoder.encode, [image.picture]))[0]
    return await _duplicates(request, context, collection, vector, min_score)


@router.get(
    "/collections/{name}/items/{item_id}/duplicates",
    responses=UNKNOWN,
    summary="Every other stored near-duplicate of a stored image",
)
async def duplicates_of_item(
    collection: ExistingCollection,
    context: Context,
    item_id: ItemId,
    request: Request,
    min_score: Annotated[
        float | None,
        Query(
            ge=0.0,
            le=1.0,
            description="Defaults to SEARCH_IMAGE_NEAR_DUPLICATE_SCORE.",
            examples=[0.6],
        ),
    ] = None,
) -> Duplicates:
    """Every other stored image at or above `min_score` similarity to a stored one."""
    vector = await run_in_threadpool(collection.vector, item_id)
    return await _duplicates(request, context, collection, vector, min_score, exclude=item_id)


async def _duplicates(
    request: Request,
    context: AppContext,
    collection: Collection,
    vector: Any,
    min_score: float | None,
    exclude: int | None = None,
) -> Duplicates:
    threshold = _settings(context).image_near_duplicate_score if min_score is None else min_score
    matches, truncated = await run_in_threadpool(collection.search_above, vector, threshold)
    others = [m for m in matches if m.id != exclude]
    return Duplicates(
        min_score=threshold, results=_hits(request, collection, others), truncated=truncated
    )


def _media(collection: Collection, item_id: ItemId, kind: str, media_type: str) -> FileResponse:
    path = collection.media_path(item_id, kind)
    return FileResponse(path, media_type=media_type, headers=IMMUTABLE)


@router.head("/collections/{name}/items/{item_id}/thumbnail", include_in_schema=False)
@router.get(
    "/collections/{name}/items/{item_id}/thumbnail",
    name="get_thumbnail",
    summary="An image's thumbnail (JPEG, at most 256 px)",
    responses=UNKNOWN,
    response_class=FileResponse,
)
async def thumbnail(collection: ExistingCollection, item_id: ItemId) -> FileResponse:
    """A JPEG of at most 256 px per side, cached for a year (an id's content never changes)."""
    return await run_in_threadpool(_media, collection, item_id, "thumbnail", "image/jpeg")


@router.head("/collections/{name}/items/{item_id}/original", include_in_schema=False)
@router.get(
    "/collections/{name}/items/{item_id}/original",
    name="get_original",
    summary="An image as it was loaded",
    responses=UNKNOWN,
    response_class=FileResponse,
)
async def original(collection: ExistingCollection, item_id: ItemId) -> FileResponse:
    """The file exactly as it was loaded, with its own content type; supports `Range`."""
    record = await run_in_threadpool(collection.get, item_id)
    media_type = MEDIA_TYPES.get(record["format"], "application/octet-stream")
    return await run_in_threadpool(_media, collection, item_id, "original", media_type)
