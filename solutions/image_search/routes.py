"""The image app's own routes: search by an uploaded image, more like this, near-duplicates;
and how one image is added and its files are served (hooks of the common routes)."""

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from common import (
    AddItem,
    AppEncoder,
    Collection,
    ErrorResponse,
    ExistingCollection,
    Hit,
    ItemId,
    Match,
    MediaKind,
    Responses,
    url_for,
)
from common.images import refused_as_http
from solutions.image_search.items import MAX_LABEL, MEDIA_TYPES, ImageFile, ImageRecord, read_image
from solutions.image_search.settings import Config, ImageSettings

router = APIRouter(tags=["images"])

MAX_TOP_K = 100
IMAGE_ERRORS: Responses = {
    413: {"model": ErrorResponse, "description": "Over the upload size limit."},
    415: {"model": ErrorResponse, "description": "Not a JPEG, PNG, WebP, BMP or GIF image."},
    422: {"model": ErrorResponse, "description": "Truncated, empty or too many pixels."},
}
UNKNOWN: Responses = {404: {"model": ErrorResponse, "description": "Unknown collection or item."}}

LabelFilterForm = Annotated[
    str | None,
    Form(max_length=MAX_LABEL, description="Only images with this label.", examples=["photos"]),
]
TopK = Annotated[int, Form(ge=1, le=MAX_TOP_K, description="How many results.", examples=[3])]
LabelFilter = Annotated[
    str | None,
    Query(max_length=MAX_LABEL, description="Only images with this label.", examples=["photos"]),
]
CAT: dict[str, Any] = {
    "id": "3208492252864466253",
    "score": 0.9338,
    "filename": "photos/chelsea_the_cat.jpg",
    "label": "photos",
    "format": "JPEG",
    "width": 451,
    "height": 300,
    "size_bytes": 31589,
    "thumbnail_url": "http://localhost:8000/collections/photos/items/3208492252864466253/thumbnail",
    "original_url": "http://localhost:8000/collections/photos/items/3208492252864466253/original",
}
GRAVEL: dict[str, Any] = {
    **CAT,
    "id": "7314518918057543270",
    "score": 0.1348,
    "filename": "textures/gravel.jpg",
    "label": "textures",
    "width": 512,
    "height": 512,
    "size_bytes": 104111,
    "thumbnail_url": "http://localhost:8000/collections/photos/items/7314518918057543270/thumbnail",
    "original_url": "http://localhost:8000/collections/photos/items/7314518918057543270/original",
}


class ImageHit(Hit, ImageRecord):
    """A stored image as a result: its id, score and record, and where its files are."""

    model_config = ConfigDict(json_schema_extra={"examples": [CAT]})

    score: float = Field(description="Cosine similarity to the query image, -1 to 1.")
    thumbnail_url: str
    original_url: str


class SearchResults(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"results": [CAT, GRAVEL]}]})

    results: list[ImageHit]


class Duplicates(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"min_score": 0.6, "results": [CAT], "truncated": False}]}
    )

    min_score: float
    results: list[ImageHit] = Field(description="Every stored image at or above `min_score`.")
    truncated: bool = Field(description="True if there may be more than were returned.")


def _hits(request: Request, collection: Collection, matches: list[Match]) -> list[ImageHit]:
    def url(item_id: ItemId, kind: str) -> str:
        return url_for(request, f"get_{kind}", name=collection.name, item_id=str(item_id))

    return [
        ImageHit.of(m, thumbnail_url=url(m.id, "thumbnail"), original_url=url(m.id, "original"))
        for m in matches
    ]


def _query_image(upload: UploadFile, settings: ImageSettings, label: str = "") -> ImageFile:
    data = upload.file.read()
    with refused_as_http():
        name = upload.filename or "query"
        return read_image(data, name, label, max_pixels=settings.image_max_pixels)


@router.post(
    "/collections/{name}/search",
    summary="Find the images most like an uploaded one",
    responses={**UNKNOWN, **IMAGE_ERRORS},
)
def search(
    collection: ExistingCollection,
    settings: Config,
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
    image = _query_image(file, settings)
    vectors = encoder.encode([image.picture])
    where = {"label": label} if label is not None else None
    matches = collection.search(vectors, top_k, where)[0]
    return SearchResults(results=_hits(request, collection, matches))


@router.get(
    "/collections/{name}/items/{item_id}/similar",
    responses=UNKNOWN,
    summary="More like this: the images most like a stored one (itself excluded)",
)
def similar(
    collection: ExistingCollection,
    item_id: ItemId,
    request: Request,
    top_k: Annotated[
        int, Query(ge=1, le=MAX_TOP_K, description="How many results.", examples=[3])
    ] = 10,
    label: LabelFilter = None,
) -> SearchResults:
    """The `top_k` images most like a stored one, by cosine similarity; never itself."""
    vector = collection.vector(item_id)
    where = {"label": label} if label is not None else None
    matches = collection.search([vector], top_k + 1, where)[0]
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
def duplicates_of_upload(
    collection: ExistingCollection,
    settings: Config,
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
    image = _query_image(file, settings)
    vector = encoder.encode([image.picture])[0]
    return _duplicates(request, settings, collection, vector, min_score)


@router.get(
    "/collections/{name}/items/{item_id}/duplicates",
    responses=UNKNOWN,
    summary="Every other stored near-duplicate of a stored image",
)
def duplicates_of_item(
    collection: ExistingCollection,
    settings: Config,
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
    vector = collection.vector(item_id)
    return _duplicates(request, settings, collection, vector, min_score, exclude=item_id)


def _duplicates(
    request: Request,
    settings: ImageSettings,
    collection: Collection,
    vector: Any,
    min_score: float | None,
    exclude: int | None = None,
) -> Duplicates:
    threshold = settings.image_near_duplicate_score if min_score is None else min_score
    matches, truncated = collection.search_above(vector, threshold)
    others = [m for m in matches if m.id != exclude]
    return Duplicates(
        min_score=threshold, results=_hits(request, collection, others), truncated=truncated
    )


class NewImage(BaseModel):
    """One image to add, as a form: the file and, if wanted, a label."""

    file: UploadFile = Field(description="One image.")
    label: str | None = Field(
        None,
        max_length=MAX_LABEL,
        description="Stored with the image; filter searches by it.",
        examples=["cats"],
    )


def _new_image(body: NewImage, settings: ImageSettings) -> ImageFile:
    return _query_image(body.file, settings, body.label or "")


def _added(request: Request, collection: Collection, record: dict[str, Any]) -> ImageHit:
    return _hits(request, collection, [Match(record["id"], 1.0, record)])[0]


ADD = AddItem(
    body=NewImage,
    item=_new_image,
    form=True,
    answer=_added,
    response_model=ImageHit,
    summary="Add one image",
    description="""Store one image now (for many, use a load); its id comes from the file's
bytes.

```
curl -F file=@cat.jpg -F label=cats localhost:8000/collections/<collection>/items
```
""",
    errors=IMAGE_ERRORS,
    example={**CAT, "score": 1.0},
)

MEDIA = {
    "thumbnail": MediaKind(
        summary="An image's thumbnail (JPEG, at most 256 px)",
        description="A JPEG of at most 256 px per side, cached for a year (an id's content "
        "never changes).",
        media_type=lambda _record: "image/jpeg",
    ),
    "original": MediaKind(
        summary="An image as it was loaded",
        description="The file exactly as it was loaded, with its own content type; supports "
        "`Range`.",
        media_type=lambda record: MEDIA_TYPES.get(record["format"], "application/octet-stream"),
    ),
}
