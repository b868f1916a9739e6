"""Items of a collection: page through, get, delete, and add one (for apps that take one).

``GET`` answers the app's stored model, derived from its record model (``common.records``).
Adding one item is the app's hook (``AddItem``): what the request carries (a JSON body, or a
form with a file), how it becomes the item a load would have read, and what the answer shows.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import APIRouter, Body, File, Query, Request, Response
from pydantic import BaseModel

from common.access import WriteAccess
from common.collection import Collection
from common.context import CollectionName, Context, ExistingCollection, ItemId
from common.http import ErrorResponse, Responses, json_example
from common.loading import add_one
from common.records import Record, stored, stored_model

B = TypeVar("B", bound=BaseModel)
UNKNOWN: Responses = {404: {"model": ErrorResponse, "description": "Unknown collection or item."}}
INVALID: Responses = {422: {"model": ErrorResponse, "description": "Invalid name or body."}}
STORED_ID = "3676933590210228197"
STORED_AT = "2026-11-23T15:45:58.407601Z"


@dataclass(frozen=True)
class AddItem(Generic[B]):
    """How ``POST /collections/{name}/items`` adds one item of an app.

    ``body``: what the client sends, a JSON model or, with ``form``, a form model (files
    are ``UploadFile`` fields). ``item``: the item a load would have read from it, given the
    body and the app's settings (raise an ``AppError`` for a bad one). ``answer``: the
    response for the stored item, from its collection and stored record; without it, the
    stored model. ``errors``: statuses besides
    409 and 422 that the docs should list. ``example``: the answer the docs show.
    """

    body: type[B]
    item: Callable[[B, Any], Any]  # (body, the app's settings) -> item
    form: bool = False
    answer: Callable[[Request, Collection, dict[str, Any]], BaseModel] | None = None
    response_model: type[BaseModel] | None = None
    summary: str = "Add one item (creates the collection if needed)"
    description: str = ""
    errors: dict[int | str, dict[str, Any]] | None = None
    example: dict[str, Any] | None = None


def record_example(record: type[Record]) -> dict[str, Any]:
    """The record model's first example, as ``GET .../items/{id}`` would show it stored."""
    extra = record.model_config.get("json_schema_extra")
    examples = extra.get("examples", [{}]) if isinstance(extra, dict) else [{}]
    first = examples[0] if isinstance(examples, list) and examples else {}
    return {**(first if isinstance(first, dict) else {}), "id": STORED_ID, "created_at": STORED_AT}


def items_router(record: type[Record], add: AddItem[Any] | None = None) -> APIRouter:
    router = APIRouter(prefix="/collections/{name}/items", tags=["collections"])
    Stored = stored_model(record)  # noqa: N806 - a class
    example = record_example(record)

    if add is not None:
        hook = add
        Body_ = hook.body  # noqa: N806 - a class
        where = File() if hook.form else Body()  # File: a multipart form, files or not

        @router.post(
            "",
            status_code=201,
            dependencies=[WriteAccess],
            response_model=hook.response_model or Stored,
            summary=hook.summary,
            description=hook.description or None,
            responses={
                201: json_example(hook.example or example),
                409: {"model": ErrorResponse, "description": "The same item is stored."},
                **INVALID,
                **(hook.errors or {}),
            },
        )
        def add_item(
            name: CollectionName,
            body: Annotated[Body_, where],  # type: ignore[valid-type]
            context: Context,
            request: Request,
        ) -> Any:
            """Store one item now and answer with its id; for many items, use a load.

            The id is derived from the item's content: the same item again is a 409.
            """
            item = hook.item(body, context.settings)
            codec_for = context.solution.codec
            if codec_for is None:
                raise RuntimeError("an app that adds single items declares its codec")
            collection, stored_record = add_one(
                context.collections, name, lambda c: codec_for(context.encoder, c), item
            )
            if hook.answer is not None:
                return hook.answer(request, collection, stored_record)
            return stored(Stored, stored_record)

    @router.get(
        "",
        response_model=list[Stored],  # type: ignore[valid-type]
        summary="Page through stored items, oldest first",
        responses={200: json_example([example]), **UNKNOWN},
    )
    def list_items(
        collection: ExistingCollection,
        offset: Annotated[
            int, Query(ge=0, le=2**63 - 1, description="Items to skip.", examples=[0])
        ] = 0,
        limit: Annotated[
            int, Query(ge=1, le=500, description="Items per page.", examples=[50])
        ] = 50,
    ) -> Any:
        """One page of the stored items, in the order they were stored.

        The collection's `count` (`GET /collections/{name}`) says how many pages there are.
        """
        return [stored(Stored, row) for row in collection.page(offset, limit)]

    @router.get(
        "/{item_id}",
        response_model=Stored,
        summary="One item",
        responses={200: json_example(example), **UNKNOWN},
    )
    def get_item(collection: ExistingCollection, item_id: ItemId) -> Any:
        """The stored record of one item, by the id it was given when it was stored."""
        return stored(Stored, collection.get(item_id))

    @router.delete(
        "/{item_id}",
        status_code=204,
        dependencies=[WriteAccess],
        summary="Delete one item",
        responses=UNKNOWN,
    )
    def delete_item(collection: ExistingCollection, item_id: ItemId) -> Response:
        """Delete one item from both stores (and its files, if it has any)."""
        if not collection.delete([item_id]):
            collection.get(item_id)  # raises the 404
        return Response(status_code=204)

    return router
