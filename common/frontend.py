"""The shared web front-end: static files at ``/``, and the list of apps it shows.

The same files are served by the launcher (every app, each under its prefix) and by an app
running alone (only its own page). Same origin in both cases, so the front-end needs no API
address and no CORS. Links are relative to the site root, which keeps working behind a
proxy that serves the site under a path.
"""

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from common.errors import NotFound
from common.settings import Settings
from common.solution import Solution

log = logging.getLogger(__name__)

GENERIC_PAGE = "ui/pages/generic.js"  # for an app that ships no page of its own
NO_CACHE = {"Cache-Control": "no-cache"}


class AppLink(BaseModel):
    name: str = Field(description="The app's namespace; the front-end page of the same name.")
    title: str
    api: str = Field(description="Where its API is, relative to the site root (`qa/` or ``).")
    docs: str
    redoc: str
    collection: str = Field(description="The collection the app's sample data loads into.")
    formats: list[str] = Field(description="File suffixes a load accepts.")
    options: dict[str, Any] | None = Field(
        description="JSON Schema of the options `POST collections` takes, if the app has any."
    )
    page: str = Field(description="The app's page module, relative to the site root.")


def app_link(solution: Solution[Any], prefix: str) -> AppLink:
    """``prefix`` is ``qa/`` under the launcher, empty when the app runs alone."""
    options = solution.collection_options
    page = f"ui/pages/{solution.namespace}.js" if solution.page is not None else GENERIC_PAGE
    return AppLink(
        name=solution.namespace,
        title=solution.title,
        api=prefix,
        docs=f"{prefix}docs",
        redoc=f"{prefix}redoc",
        collection=solution.default_collection,
        formats=list(solution.loader.suffixes),
        options=options.model_json_schema() if options is not None else None,
        page=page,
    )


def serve_frontend(
    app: FastAPI, solutions: Sequence[tuple[Solution[Any], str]], settings: Settings
) -> None:
    """Serve the front-end at ``/`` (its files under ``/ui``) and the apps at ``/apps``.

    ``solutions``: each app with the prefix it is served under. An app's own page module is
    served at ``ui/pages/<namespace>.js``, next to the shared modules it imports.
    """
    links = [app_link(solution, prefix) for solution, prefix in solutions]
    pages = {s.namespace: s.page for s, _ in solutions if s.page is not None}

    @app.get("/apps", include_in_schema=False)
    async def apps() -> list[AppLink]:
        return list(links)

    folder = settings.frontend_dir
    if not (folder / "index.html").is_file():
        log.warning("no front-end at %s (SEARCH_FRONTEND_DIR): serving the API only", folder)
        return

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(folder / "index.html", headers=NO_CACHE)

    @app.get("/ui/pages/{namespace}.js", include_in_schema=False)
    async def page(namespace: str) -> FileResponse:
        found = pages.get(namespace)
        if found is None or not found.is_file():
            raise NotFound(f"no page {namespace!r}")
        return FileResponse(found, media_type="text/javascript", headers=NO_CACHE)

    app.mount("/ui", StaticFiles(directory=folder / "ui"), name="ui")
