"""The app factory: one FastAPI app per solution, with the standard surface every app shares."""

import logging
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware

from common.api.loads import discard_upload, run_job, sample_source, start_load
from common.api_docs import serve_api_docs
from common.batching import Batching
from common.collection import Collections, CollectionSpec, Storage
from common.context import AppContext
from common.encoders import Encoder
from common.errors import StartupError
from common.frontend import serve_frontend
from common.http import (
    BodyGuardMiddleware,
    RequestContextMiddleware,
    UnexpectedErrorMiddleware,
    configure_logging,
    install_error_handlers,
)
from common.jobs import JobRunner, JobStore
from common.leases import Lease, SQLiteInUse, claim_sqlite, release_sqlite
from common.openapi import finish_openapi
from common.settings import Settings
from common.solution import Solution
from common.startup import open_storage, reported, run

log = logging.getLogger(__name__)

STANDARD_TAGS = [
    {"name": "collections", "description": "The verbs every app has: collections and items."},
    {
        "name": "loads",
        "description": "Bulk loads. Each answers **202** with a job at once; the "
        "work runs in the background. Bad items are recorded in the job and skipped.",
    },
    {"name": "jobs", "description": "Follow, list and cancel load jobs; progress is persisted."},
    {"name": "health", "description": "Liveness and readiness probes."},
    {"name": "media", "description": "Item files by id: originals, thumbnails."},
]


async def start_app(
    solution: Solution[Any], settings: Settings, storage: Storage | None = None
) -> AppContext:
    """Connect, load the encoder, recover from any crash, queue the sample on first start.

    Connecting comes first: it is quick, and what a newcomer most often has to fix.
    """
    opened = storage if storage is not None else await run_in_threadpool(open_storage, settings)
    try:
        _check_single_process(settings, opened)
    except BaseException:
        if storage is None:
            opened.close()
        raise
    batching = Batching(
        max_batch=settings.query_batch_size,
        max_wait=settings.query_batch_wait_ms / 1000,
        max_waiting=settings.query_queue_size,
    )
    try:
        loaded = await run_in_threadpool(solution.load_encoder, settings)
        encoder = batching.apply(loaded)
        context = await run_in_threadpool(_prepare, solution, settings, opened, encoder)
        context.batching = batching
    except BaseException:
        batching.close()
        release_sqlite(str(opened.records.engine.url))
        if storage is None:
            opened.close()
        raise
    default = solution.default_collection
    first_start = not await run_in_threadpool(context.collections.exists, default)
    # Several processes starting together: the first one's sample load is enough.
    first_start = first_start and not await run_in_threadpool(context.jobs.unfinished, default)
    sample = sample_source(context)
    if settings.load_sample_data and sample is not None and first_start:
        log.info("%s: loading the sample into %r", solution.namespace, solution.default_collection)
        await run_in_threadpool(start_load, context, solution.default_collection, sample)
    return context


def _check_single_process(settings: Settings, storage: Storage) -> None:
    """SQLite and Milvus Lite serve one process: enforce it, and explain the way out."""
    embedded = [
        name
        for name, is_embedded in (
            ("SQLite", storage.records.is_sqlite),
            ("Milvus Lite", storage.vectors.capabilities.is_lite),
        )
        if is_embedded
    ]
    if embedded and settings.role != "all":
        raise StartupError(
            f"SEARCH_ROLE={settings.role} splits an app over several processes, but "
            f"{' and '.join(embedded)} serve one process: use a Milvus server and MySQL "
            "(SEARCH_MILVUS_URI, SEARCH_SQL_URL; see docs/scale-out.md), or SEARCH_ROLE=all"
        )
    try:
        claim_sqlite(str(storage.records.engine.url))
    except SQLiteInUse as error:
        raise StartupError(str(error)) from error


def recover(solution: Solution[Any], collections: Collections) -> None:
    """Finish what dead processes left half done: the layer's writes, then the app's own."""
    collections.recover()
    if solution.recover is not None:
        for collection in collections.all():
            solution.recover(collection)


def _prepare(
    solution: Solution[Any], settings: Settings, storage: Storage, encoder: Encoder
) -> AppContext:
    capabilities = storage.vectors.capabilities

    def spec_for(options: Mapping[str, Any]) -> CollectionSpec:
        return solution.spec_for(options, capabilities)

    spec = spec_for(solution.default_options())
    if encoder.dim != spec.index.dim:
        raise RuntimeError(
            f"{encoder.name} makes {encoder.dim}-d vectors but the collections "
            f"of {solution.namespace} are declared {spec.index.dim}-d"
        )
    companions = {
        kind: CollectionSpec.of(record, index)
        for kind, (record, index) in solution.companions.items()
    }
    collections = Collections(
        storage, solution.namespace, spec_for, solution.default_options(), companions
    )
    mode = solution.mode(capabilities) if solution.mode is not None else ""
    # Safe beside live processes of the app: each collection is swept under its lock.
    recover(solution, collections)
    engine = storage.records.engine
    job_store = JobStore(engine, solution.namespace)
    lease = Lease(engine, solution.namespace, settings.role, settings.lease_s)
    context = AppContext(
        settings=settings,
        solution=solution,
        storage=storage,
        collections=collections,
        encoder=encoder,
        jobs=job_store,
        runner=JobRunner(job_store, lease, settings.max_queued_jobs),
        mode=mode,
    )
    context.runner.start(
        run=None if settings.role == "api" else partial(run_job, context),
        discard=discard_upload,
        on_takeover=partial(recover, solution, collections),
        alone=storage.records.is_sqlite,
    )
    return context


async def stop_app(context: AppContext, *, close_storage: bool) -> None:
    """Stop the app's jobs (a running one goes back to the queue), then let go of all."""
    await run_in_threadpool(context.runner.shutdown)
    if context.batching is not None:
        await run_in_threadpool(context.batching.close)
    release_sqlite(str(context.storage.records.engine.url))
    if close_storage:
        context.storage.close()


def used_tags(
    routers: Sequence[APIRouter], tags: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The descriptions of the tags some route of ``routers`` has, in the order given."""
    used = {t for router in routers for route in router.routes for t in getattr(route, "tags", [])}
    return [dict(tag) for tag in tags if tag["name"] in used]


def create_app(
    solution: Solution[Any],
    settings: Settings | None = None,
    storage: Storage | None = None,
    *,
    frontend: bool = True,
) -> FastAPI:
    """Build an app; connections and the model are created in its lifespan, not here.

    ``frontend``: serve the web front-end at ``/``, showing this app's page (the launcher
    serves it once for all its apps instead).
    """
    settings = settings or solution.settings_model()
    if not isinstance(settings, solution.settings_model):
        raise TypeError(f"{solution.title} needs {solution.settings_model.__name__} settings")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        # A launcher serving several apps in one process hands them one shared storage.
        shared = storage or getattr(app.state, "shared_storage", None)
        with reported(app):
            context = await start_app(solution, settings, shared)
        app.state.context = context
        try:
            yield
        finally:
            await stop_app(context, close_storage=shared is None)

    app = FastAPI(
        title=solution.title,
        description=solution.description,
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served from this package instead of a CDN: see common/api_docs.py
        redoc_url=None,
    )
    serve_api_docs(app)
    install_error_handlers(app)
    finish_openapi(app, solution.default_collection)
    app.add_middleware(UnexpectedErrorMiddleware)
    app.add_middleware(
        BodyGuardMiddleware,
        max_bytes=settings.max_upload_bytes,
        timeout=settings.body_timeout_s,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["*"],
        )
    app.add_middleware(RequestContextMiddleware)
    for router in solution.routers:
        app.include_router(router)
    app.openapi_tags = used_tags(solution.routers, [*solution.openapi_tags, *STANDARD_TAGS])
    if frontend:
        serve_frontend(app, [(solution, "")], settings)
    return app


def quiet_openmp() -> None:
    """Before PyTorch or FAISS load: stop their OpenMP threads spin-waiting.

    PyTorch and Milvus Lite's FAISS each bring an OpenMP runtime; with the default
    spin-waiting their idle threads steal the cores the other one is computing on.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def serve(solution: Solution[Any], settings: Settings | None = None) -> None:
    """Run one app alone with uvicorn (``python -m solutions.<name>``); with
    ``SEARCH_ROLE=worker``, its job worker alone, without HTTP (``common.worker``)."""
    settings = settings or solution.settings_model()
    if settings.role == "worker":
        from common.worker import work  # imports this module

        work([solution])
        return
    configure_logging(settings.log_level)
    quiet_openmp()
    run(create_app(solution, settings), settings)
