"""Item files by id (an original, a thumbnail), for every app whose items have files.

A file is found by its collection and item id only, never by a path a client sent. Answers
support ``HEAD`` and ``Range`` (a player seeks, a browser resumes), and are cached for a year:
an id's content never changes.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse

from common.collection import Collection
from common.context import ExistingCollection, ItemId
from common.http import ErrorResponse, Responses

IMMUTABLE = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
}
UNKNOWN: Responses = {
    404: {"model": ErrorResponse, "description": "Unknown collection, item or file."}
}


@dataclass(frozen=True)
class MediaKind:
    """One kind of file items have: what the docs say of it and its content type."""

    summary: str
    description: str
    media_type: Callable[[dict[str, Any]], str]  # from the item's stored record


def media_router(kinds: Mapping[str, MediaKind]) -> APIRouter:
    """``GET`` and ``HEAD /collections/{name}/items/{id}/<kind>`` for each kind; the route
    of kind ``thumbnail`` is named ``get_thumbnail`` (for ``url_for``)."""
    router = APIRouter(tags=["media"])
    for kind, about in kinds.items():
        _add_route(router, kind, about)
    return router


def _add_route(router: APIRouter, kind: str, about: MediaKind) -> None:
    path = f"/collections/{{name}}/items/{{item_id}}/{kind}"

    def serve(collection: ExistingCollection, item_id: ItemId) -> FileResponse:
        return file_response(collection, item_id, kind, about.media_type)

    serve.__doc__ = about.description
    router.add_api_route(
        path,
        serve,
        methods=["GET"],
        name=f"get_{kind}",
        summary=about.summary,
        responses=UNKNOWN,
        response_class=FileResponse,
    )
    router.add_api_route(
        path, serve, methods=["HEAD"], name=f"head_{kind}", include_in_schema=False
    )


def file_response(
    collection: Collection,
    item_id: int,
    kind: str,
    media_type: Callable[[dict[str, Any]], str],
) -> FileResponse:
    record = collection.get(item_id)
    path = collection.media_path(item_id, kind)
    return FileResponse(path, media_type=media_type(record), headers=IMMUTABLE)
