"""The verbs every app has: list, create, describe and drop collections; add, get, delete items."""

import functools
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, create_model

from common.collection import Collection
from common.context import CollectionName, Context, ExistingCollection, ItemId
from common.http import ErrorResponse, json_example
from common.loading import add_one
from common.names import MAX_NAME_LENGTH, NAME_PATTERN
from common.solution import Solution

UNKNOWN = {404: {"model": ErrorResponse, "description": "Unknown collection or item."}}
INVALID = {422: {"model": ErrorResponse, "description": "Invalid name or body."}}


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


def new_collection_model(solution: Solution[Any]) -> type[NewCollection]:
    """The create body: a name, plus the app's per-collection options if it has any."""
    options = solution.collection_options
    if options is None:
        return NewCollection
    return create_model(
        f"New{solution.namespace.title()}Collection",
        __base__=NewCollection,
        options=(
            options,
            Field(default_factory=options, description="Chosen once, at creation."),
        ),
    )


def info(collection: Collection) -> CollectionInfo:
    index = collection.spec.index
    return CollectionInfo(
        name=collection.name,
        count=collection.count(),
        dim=index.dim,
        metric=index.metric,
        index_type=index.index_type,
        options=collection.options,
    )


def stored_example(solution: Solution[Any]) -> dict[str, Any]:
    """What ``GET .../items/{id}`` shows in the docs: the item model's example, stored."""
    extra = solution.item_model.model_config.get("json_schema_extra")
    examples = extra.get("examples", [{}]) if isinstance(extra, dict) else [{}]
    return {
        **examples[0],  # type: ignore[dict-item]
        "id": "3676933590210228197",
        "created_at": "2026-11-23T15:45:58.407601Z",
    }


def stored_model(solution: Solution[Any]) -> type[BaseModel]:
    """The item as returned: the app's fields plus its id (a string: 63-bit ints break JS)."""
    return create_model(
        f"Stored{solution.item_model.__name__}",
        __base__=solution.item_model,
        id=(str, Field(description="The item's id, derived from its content.")),
        created_at=(datetime, ...),
    )


def stored(model: type[BaseModel], record: dict[str, Any]) -> BaseModel:
    created = record["created_at"]
    if created.tzinfo is None:  # stored as naive UTC
        created = created.replace(tzinfo=UTC)
    return model(**{**record, "id": str(record["id"]), "created_at": created})


def collections_router(solution: Solution[Any]) -> APIRouter:
    router = APIRouter(prefix="/collections", tags=["collections"])
    Item = solution.item_model  # noqa: N806 - a class
    Stored = stored_model(solution)  # noqa: N806 - a class
    New = new_collection_model(solution)  # noqa: N806 - a class
    item = stored_example(solution)
    new = {"name": "office"}
    if solution.collection_options is not None:
        new["options"] = solution.default_options()

    @router.get("", summary="All collections of this app with their sizes")
    async def list_collections(context: Context) -> list[CollectionInfo]:
        """Every collection of this app, with how many items are searchable in each."""

        def read() -> list[CollectionInfo]:
            return [info(context.collections.get(n)) for n in context.collections.names()]

        return await run_in_threadpool(read)

    @router.post(
        "",
        status_code=201,
        summary="Create an empty collection",
        responses={409: {"model": ErrorResponse, "description": "It exists."}, **INVALID},
    )
    async def create_collection(
        body: Annotated[New, Body(examples=[new])],  # type: ignore[valid-type]
        context: Context,
    ) -> CollectionInfo:
        """Create an empty collection in both stores, with the app's options if it has any.

        A load or an add creates the collection it names if needed (with the default
        options), so this is only needed to choose options or to create it ahead.
        """
        options: BaseModel | None = getattr(body, "options", None)
        chosen = options.model_dump(mode="json") if options is not None else None
        return info(await run_in_threadpool(context.collections.create, body.name, chosen))

    @router.get("/{name}", summary="Size and index of a collection", responses=UNKNOWN)
    async def describe_collection(collection: ExistingCollection) -> CollectionInfo:
        """How many items are searchable, and how the collection's vectors are indexed."""
        return await run_in_threadpool(info, collection)

    @router.delete(
        "/{name}", status_code=204, summary="Drop a collection from both stores", responses=UNKNOWN
    )
    async def drop_collection(name: CollectionName, context: Context) -> Response:
        """Drop the collection's vectors, records and item files. This cannot be undone."""
        await run_in_threadpool(context.collections.drop, name)
        return Response(status_code=204)

    if solution.json_items:

        @router.post(
            "/{name}/items",
            status_code=201,
            response_model=Stored,
            summary="Add one item (creates the collection if needed)",
            responses={
                201: json_example(item),
                409: {"model": ErrorResponse, "description": "The same item is stored."},
                **INVALID,
            },
        )
        async def add_item(
            name: CollectionName,
            item: Annotated[Item, Body()],  # type: ignore[valid-type]
            context: Context,
        ) -> Any:
            """Store one item now and answer with its id; for many items, use a load.

            The id is derived from the item's content: the same item again is a 409.
            """
            codec_for = functools.partial(solution.codec, context.encoder)
            _, record = await run_in_threadpool(add_one, context.collections, name, codec_for, item)
            return stored(Stored, record)

    @router.get(
        "/{name}/items",
        response_model=list[Stored],  # type: ignore[valid-type]
        summary="Page through stored items, oldest first",
        responses={200: json_example([item]), **UNKNOWN},
    )
    async def list_items(
        collection: ExistingCollection,
        offset: Annotated[int, Query(ge=0, description="Items to skip.", examples=[0])] = 0,
        limit: Annotated[
            int, Query(ge=1, le=500, description="Items per page.", examples=[50])
        ] = 50,
    ) -> Any:
        """One page of the stored items, in the order they were stored.

        The collection's `count` (`GET /collections/{name}`) says how many pages there are.
        """
        rows = await run_in_threadpool(collection.page, offset, limit)
        return [stored(Stored, row) for row in rows]

    @router.get(
        "/{name}/items/{item_id}",
        response_model=Stored,
        summary="One item",
        responses={200: json_example(item), **UNKNOWN},
    )
    async def get_item(collection: ExistingCollection, item_id: ItemId) -> Any:
        """The stored record of one item, by the id it was given when it was stored."""
        return stored(Stored, await run_in_threadpool(collection.get, item_id))

    @router.delete(
        "/{name}/items/{item_id}", status_code=204, summary="Delete one item", responses=UNKNOWN
    )
    async def delete_item(collection: ExistingCollection, item_id: ItemId) -> Response:
        """Delete one item from both stores (and its files, if it has any)."""
        deleted = await run_in_threadpool(collection.delete, [item_id])
        if not deleted:
            await run_in_threadpool(collection.get, item_id)  # raises the 404
        return Response(status_code=204)

    return router
