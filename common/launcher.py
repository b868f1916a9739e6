"""Every installed app in one process on one port, each under its own prefix.

``/qa/...`` is the QA chatbot with its own ``/qa/docs``, ``/images/...`` the image search,
and so on; ``/`` is the web front-end with a page per app, ``/apps`` lists them. The apps
share one storage (one Milvus connection, one SQL engine), created here and handed to each
app's lifespan, which runs as usual.
"""

import importlib
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from importlib.util import find_spec
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from common.app import create_app, quiet_openmp
from common.frontend import serve_frontend
from common.http import (
    RequestContextMiddleware,
    UnexpectedErrorMiddleware,
    configure_logging,
    install_error_handlers,
)
from common.settings import Settings
from common.solution import Solution
from common.startup import open_storage, reported, run

log = logging.getLogger(__name__)


def installed(modules: Sequence[str]) -> Iterator[Solution[Any]]:
    """The apps, named by the modules that declare each one's ``SOLUTION``, whose
    dependencies are installed (``scripts/install qa,image,molecules``)."""
    for module in modules:
        try:
            solution: Solution[Any] = importlib.import_module(module).SOLUTION
        except ImportError as error:  # its dependency group is not installed
            log.warning("not serving %s: %s", module, error)
            continue
        missing = [name for name in solution.requires if find_spec(name) is None]
        if missing:
            log.warning("not serving %s: missing %s", solution.title, ", ".join(missing))
            continue
        yield solution


def create_site(solutions: Sequence[Solution[Any]], settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    apps = {solution.namespace: create_app(solution, frontend=False) for solution in solutions}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        with reported(site):
            storage = await run_in_threadpool(open_storage, settings)
        try:
            async with AsyncExitStack() as stack:
                for app in apps.values():
                    app.state.shared_storage = storage
                    with reported(site):
                        await stack.enter_async_context(app.router.lifespan_context(app))
                yield
        finally:
            storage.close()

    site = FastAPI(title="Search apps", lifespan=lifespan, docs_url=None, redoc_url=None)
    # The site's own answers (a path under no app) have the apps' error shape and request id.
    install_error_handlers(site)
    site.add_middleware(UnexpectedErrorMiddleware)
    site.add_middleware(RequestContextMiddleware)
    for prefix, app in apps.items():
        site.mount(f"/{prefix}", app)
    serve_frontend(site, [(s, f"{s.namespace}/") for s in solutions], settings)
    return site


def serve(modules: Sequence[str]) -> None:
    """Every installed app of ``modules`` on SEARCH_HOST:SEARCH_PORT (``python -m solutions``)."""
    settings = Settings()
    configure_logging(settings.log_level)
    solutions = list(installed(modules))
    if not solutions:
        raise SystemExit("no app is installed: run scripts/install qa,image")
    quiet_openmp()
    docs = ", ".join(f"/{solution.namespace}/docs" for solution in solutions)
    run(create_site(solutions, settings), settings, docs)
