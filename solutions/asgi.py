"""App factories for any ASGI server, e.g. several processes on one port::

    uvicorn --factory --workers 2 solutions.asgi:qa_chatbot

Each name is an app's package (``qa_chatbot``, ``image_search``, ``molecular_search``,
``video_analysis``), or ``site`` for every installed app under one port. Several processes
need a Milvus server and MySQL (docs/scale-out.md); ``python -m solutions.<app>`` remains
the way to run one process, with its request-header deadline (``SEARCH_HEADER_TIMEOUT_S``),
which a server started this way does not apply.
"""

import importlib
from collections.abc import Callable

from fastapi import FastAPI

from common.app import create_app
from common.launcher import create_site, installed
from solutions import APPS


def site() -> FastAPI:
    return create_site(list(installed(APPS)))


def __getattr__(name: str) -> Callable[[], FastAPI]:
    module = f"solutions.{name}.app"
    if module not in APPS:
        raise AttributeError(f"no app {name!r}; the apps are {', '.join(APPS)}")
    return lambda: create_app(importlib.import_module(module).SOLUTION)
