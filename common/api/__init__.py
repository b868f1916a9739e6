"""Routers every app composes in its ``app.py``: collections, items, loads, jobs, health,
media."""

from common.api.collections import collections_router
from common.api.health import router as health_router
from common.api.items import AddItem, items_router
from common.api.jobs import router as jobs_router
from common.api.loads import loads_router
from common.api.media import MediaKind, media_router

__all__ = [
    "AddItem",
    "MediaKind",
    "collections_router",
    "health_router",
    "items_router",
    "jobs_router",
    "loads_router",
    "media_router",
]
