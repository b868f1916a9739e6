"""The verbs every app has on collections: list, create, describe and drop."""

from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

from fastapi import APIRouter, Body, Response
from pydantic import BaseModel, ConfigDict, Field, create_model

from common.access import WriteAccess
from common.collection import Collection
from common.context import CollectionName, Context, ExistingCollection
from common.errors import Conflict
from common.http import ErrorResponse, Responses
from common.names import MAX_NAME_LENGTH, NAME_PATTERN

UNKNOWN: Responses = {404: {"model": ErrorResponse, "description": "Unknown collection or item."}}
INVALID: Responses = {422: {"model": ErrorResponse, "description": "Invalid name or body."}}


class CollectionInfo(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "faq",
                    "count": 334,
                    "dim": 384,
                    "metric": "COSINE",
                    "index_type": "HNSW",
                    "options": {},
                }
            ]
        }
    )

    name: str = Field(examples=["faq"])
    count: int = Field(description="Searchable items.")
    dim: int
    metric: str
    index_type: str
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="What the collection was created with, if the app has options.",
    )


class NewCollection(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "office"}]})

    name: str = Field(
        pattern=NAME_PATTERN,
        max_length=MAX_NAME_LENGTH,
        description="Lower-case letters, digits and single underscores, starting with a letter.",
        examples=["office"],
    )


def new_collection_model(options: type[BaseModel] | None) -> type[NewCollection]:
    """The create body: a name, plus the app's per-collection options if it has any."""
    if options is None:
        return NewCollection
    return create_model(
        f"New{options.__name__}Collection",
        __base__=NewCollection,
        options=(
            options,
            Field(default_factory=options, description="Chosen once, at creation."),
        ),
    )


def info(collection: Collection, count: int | None = None) -> CollectionInfo:
    index = collection.spec.index
    return CollectionInfo(
        name=collection.name,
        count=collection.count() if count is None else count,
        dim=index.dim,
        metric=index.metric,
        index_type=index.index_type,
        options=collection.options,
    )


def collections_router(options: type[BaseModel] | None = None) -> APIRouter:
    """``options``: what each collection may choose when it is created, if anything."""
    router = APIRouter(prefix="/collections", tags=["collections"])
    if TYPE_CHECKING:
        New: TypeAlias = NewCollection
    else:
        New = new_collection_model(options)  # noqa: N806 - a class
    new: dict[str, Any] = {"name": "office"}
    if options is not None:
        new["options"] = options().model_dump(mode="json")

    @router.get("", summary="All collections of this app with their sizes")
    def list_collections(context: Context) -> list[CollectionInfo]:
        """Every collection of this app, with how many items are searchable in each."""
        collections = context.collections.all()
        counts = context.collections.counts(collections)
        return [info(c, counts[c.name]) for c in collections]

    @router.post(
        "",
        status_code=201,
        summary="Create an empty collection",
        dependencies=[WriteAccess],
        responses={409: {"model": ErrorResponse, "description": "It exists."}, **INVALID},
    )
    def create_collection(
        body: Annotated[New, Body(examples=[new])],
        context: Context,
    ) -> CollectionInfo:
        """Create an empty collection in both stores, with the app's options if it has any.

        A load or an add creates the collection it names if needed (with the default
        options), so this is only needed to choose options or to create it ahead.
        """
        chosen: BaseModel | None = getattr(body, "options", None)
        picked = chosen.model_dump(mode="json") if chosen is not None else None
        return info(context.collections.create(body.name, picked))

    @router.get("/{name}", summary="Size and index of a collection", responses=UNKNOWN)
    def describe_collection(collection: ExistingCollection) -> CollectionInfo:
        """How many items are searchable, and how the collection's vectors are indexed."""
        return info(collection)

    @router.delete(
        "/{name}",
        status_code=204,
        summary="Drop a collection from both stores",
        dependencies=[WriteAccess],
        responses={
            **UNKNOWN,
            409: {"model": ErrorResponse, "description": "A load is queued or running for it."},
        },
    )
    def drop_collection(name: CollectionName, context: Context) -> Response:
        """Drop the collection's vectors, records and item files. This cannot be undone.

        Refused (409) while a load is queued or running for the collection: cancel it
        (`POST /jobs/{id}/cancel`) and drop once it has ended.
        """
        loading = context.jobs.unfinished(name)
        if loading:
            raise Conflict(
                f"a load is writing to {name!r} (job {loading[0]}): cancel it with "
                f"POST /jobs/{loading[0]}/cancel and drop the collection once it has ended",
                details=[{"job": job} for job in loading],
            )
        context.collections.drop(name)
        return Response(status_code=204)

    return router
