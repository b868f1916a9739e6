"""The shared layer every app plugs its encoder into: settings, storage, jobs, app factory.

What an app author needs is importable from here (``from common import Record, Solution``);
the submodules hold the rest, for apps that go further.
"""

from common.api import (
    AddItem,
    MediaKind,
    collections_router,
    health_router,
    items_router,
    jobs_router,
    loads_router,
    media_router,
)
from common.app import create_app, serve
from common.collection import Collection, Match
from common.context import AppEncoder, Context, ExistingCollection, ItemId, get_settings
from common.encoders import Encoder
from common.errors import InvalidInput, UnsupportedFeature, UnsupportedMediaType
from common.http import ErrorResponse, Responses, json_example, url_for
from common.loading import ItemCodec, Parsed
from common.parsers import CsvParser, JsonLinesParser
from common.records import Column, Hit, Record
from common.settings import Settings
from common.solution import Loader, Solution, file_loader
from common.vector_store import Capabilities, VectorIndex

__all__ = [
    "AddItem",
    "AppEncoder",
    "Capabilities",
    "Collection",
    "Column",
    "Context",
    "CsvParser",
    "Encoder",
    "ErrorResponse",
    "ExistingCollection",
    "Hit",
    "InvalidInput",
    "ItemCodec",
    "ItemId",
    "JsonLinesParser",
    "Loader",
    "Match",
    "MediaKind",
    "Parsed",
    "Record",
    "Responses",
    "Settings",
    "Solution",
    "UnsupportedFeature",
    "UnsupportedMediaType",
    "VectorIndex",
    "collections_router",
    "create_app",
    "file_loader",
    "get_settings",
    "health_router",
    "items_router",
    "jobs_router",
    "json_example",
    "loads_router",
    "media_router",
    "serve",
    "url_for",
]
