"""What a running app holds, created in its lifespan and injected into routes."""

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Request

from common.batching import Batching
from common.collection import Collection, Collections, Storage
from common.encoders import Encoder
from common.jobs import JobRunner, JobStore
from common.names import MAX_NAME_LENGTH, NAME_PATTERN
from common.settings import Settings
from common.solution import Solution


@dataclass
class AppContext:
    settings: Settings
    solution: Solution[Any]
    storage: Storage
    collections: Collections
    encoder: Encoder
    jobs: JobStore
    runner: JobRunner
    mode: str = ""  # how this app searches on the connected Milvus, when that varies
    batching: "Batching | None" = None  # the query encoders' batching, closed with the app


# Dependencies that only read memory are ``async def``: FastAPI runs a plain ``def``
# dependency on its thread pool, a round trip between threads for every request that needs
# it. Those that wait for a database (``get_collection``) stay plain functions.


async def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


Context = Annotated[AppContext, Depends(get_context)]

CollectionName = Annotated[
    str,
    Path(
        pattern=NAME_PATTERN,
        max_length=MAX_NAME_LENGTH,
        description="Lower-case letters, digits and single underscores, starting with a letter.",
        examples=["faq"],
    ),
]


ItemId = Annotated[
    int,
    Path(
        ge=0,
        le=2**63 - 1,
        description="An item's id, as returned when it was stored (derived from its content).",
        examples=[3676933590210228197],
    ),
]


def get_collection(name: CollectionName, context: Context) -> Collection:
    return context.collections.get(name)


ExistingCollection = Annotated[Collection, Depends(get_collection)]


async def get_encoder(context: Context) -> Encoder:
    return context.encoder


AppEncoder = Annotated[Encoder, Depends(get_encoder)]


async def get_settings(context: Context) -> Settings:
    """The running app's settings: an app declares its own typed dependency on this, e.g.
    ``Config = Annotated[QASettings, Depends(get_settings)]`` (``create_app`` checks that
    an app runs with its own settings model)."""
    return context.settings
