"""Starting a server, with what can stop it said in one line: the cause and the fix.

A newcomer's first run meets these: the demo already running (its Milvus Lite file or its
port is taken), a Milvus server or MySQL that is not there, a database nobody created, a
model package not installed. Each becomes a ``StartupError`` whose message names the cause
and the fix; ``run`` prints it as one line and exits with status 1. The traceback is logged
only with ``SEARCH_LOG_LEVEL=debug``. Anything else that fails at start is a bug, and keeps
its traceback.
"""

import asyncio
import errno
import fcntl
import logging
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import uvicorn
from fastapi import FastAPI
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from uvicorn.protocols.http.h11_impl import H11Protocol

from common.collection import Storage
from common.errors import BackendUnavailable, StartupError
from common.media import MediaStore
from common.record_store import RecordStore
from common.settings import Settings
from common.vector_store import VectorStore

log = logging.getLogger(__name__)

# MySQL / MariaDB client error numbers, as mysql-connector reports them.
UNKNOWN_DATABASE = 1049
ACCESS_DENIED = (1044, 1045)
UNREACHABLE = (2002, 2003, 2005, 2006, 2013)


def open_storage(settings: Settings) -> Storage:
    """Connect to Milvus and SQL, or raise a ``StartupError`` saying what to change."""
    uri = settings.milvus_uri
    if uri.endswith(".db"):
        check_milvus_lite_free(uri)
    token = settings.milvus_token.get_secret_value() if settings.milvus_token else None
    try:
        vectors = VectorStore(
            uri,
            token,
            search_batch=settings.query_batch_size,
            search_queue=settings.query_queue_size,
        )
    except BackendUnavailable as error:
        if uri.endswith(".db"):
            raise StartupError(
                f"cannot open Milvus Lite at {uri} ({error.message}): check SEARCH_MILVUS_URI"
            ) from error
        raise StartupError(
            f"cannot reach a Milvus server at {uri}: start it, or correct SEARCH_MILVUS_URI "
            "(unset, the apps use Milvus Lite in ./data/milvus.db and need no server)"
        ) from error
    try:
        records = RecordStore(settings.sql_url)
    except (ArgumentError, NoSuchModuleError, ImportError) as error:
        vectors.close()
        raise StartupError(
            f"SEARCH_SQL_URL is not a database URL these apps can use ({error}): use "
            "sqlite:///path/to/file.db or mysql+mysqlconnector://user:password@host:3306/db"
        ) from error
    try:
        with records.engine.connect():
            pass
    except DBAPIError as error:
        vectors.close()
        records.close()
        raise StartupError(explain_sql(error, settings.sql_url)) from error
    imports = settings.bulk_import_dir
    if imports is not None and vectors.capabilities.is_lite:
        vectors.close()
        records.close()
        raise StartupError(
            "SEARCH_BULK_IMPORT_DIR is for a Milvus server, which reads the files: Milvus "
            "Lite has no bulk import (unset it, or set SEARCH_MILVUS_URI to a server)"
        )
    try:
        media = MediaStore(settings.media_dir)
        return Storage(vectors, records, media, imports.resolve() if imports else None)
    except BaseException:
        vectors.close()
        records.close()
        raise


def check_milvus_lite_free(uri: str) -> None:
    """Milvus Lite serves a file from one process at a time; say so if another has it."""
    from milvus_lite.db import LOCK_FILENAME

    lock = Path(uri).expanduser() / LOCK_FILENAME
    if not lock.is_file():
        return
    with lock.open("rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StartupError(
                f"{uri} is in use by another process (is ./scripts/demo or another app already "
                "running?): stop it, or set SEARCH_MILVUS_URI to another file or a Milvus server"
            ) from None
        fcntl.flock(handle, fcntl.LOCK_UN)


def explain_sql(error: DBAPIError, url: str) -> str:
    parsed = make_url(url)
    where = parsed.render_as_string(hide_password=True)
    number = getattr(error.orig, "errno", None)
    if number == UNKNOWN_DATABASE:
        return (
            f"the database {parsed.database!r} does not exist on {parsed.host}: create it "
            f"(CREATE DATABASE {parsed.database} CHARACTER SET utf8mb4) or correct SEARCH_SQL_URL"
        )
    if number in ACCESS_DENIED:
        return (
            f"the SQL server at {parsed.host} refused user {parsed.username!r} (wrong password, "
            f"or no rights on {parsed.database!r}): correct SEARCH_SQL_URL or grant the rights"
        )
    if number in UNREACHABLE:
        return f"cannot reach the SQL server of {where}: start it, or correct SEARCH_SQL_URL"
    return f"cannot open the SQL database {where} ({error.orig}): check SEARCH_SQL_URL"


def listen(host: str, port: int) -> socket.socket:
    """Take the port now, before the models load, so that a taken port fails at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not implied: asyncio sets TCP_NODELAY only on sockets that say so,
    # and without it every small answer waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise StartupError(
                f"port {port} on {host} is taken (is ./scripts/demo or another app already "
                "running?): stop it, or set SEARCH_PORT to a free port"
            ) from error
        raise StartupError(
            f"cannot listen on {host}:{port} ({error.strerror}): check SEARCH_HOST and SEARCH_PORT"
        ) from error
    sock.listen(2048)  # listening now: a second app on this port fails at its bind
    return sock


@contextmanager
def reported(app: FastAPI) -> Iterator[None]:
    """Around a lifespan's start: keep a ``StartupError`` where ``run`` can find it."""
    try:
        yield
    except StartupError as error:
        app.state.startup_error = error
        raise


class _HideStartupTraceback(logging.Filter):
    """Uvicorn logs a failed start's traceback; for a ``StartupError`` the one line is enough."""

    def __init__(self, app: FastAPI) -> None:
        super().__init__()
        self.app = app

    def filter(self, record: logging.LogRecord) -> bool:
        explained = getattr(self.app.state, "startup_error", None) is not None
        return not (explained and record.levelno >= logging.ERROR)


def run(app: FastAPI, settings: Settings, docs: str = "/docs") -> None:
    """Serve ``app`` on SEARCH_HOST:SEARCH_PORT until stopped; exit 1 if it cannot start.

    ``docs`` says where the API docs are, for the line that says where the app serves.
    """
    debug = settings.log_level.upper() == "DEBUG"
    try:
        sock = listen(settings.host, settings.port)
    except StartupError as error:
        fail(error, debug)
    uvicorn_log = logging.getLogger("uvicorn.error")
    hide = _HideStartupTraceback(app)
    if not debug:
        uvicorn_log.addFilter(hide)
    url = f"http://{settings.host}:{settings.port}"
    server = _Server(
        uvicorn.Config(app, log_config=None, http=headers_timed(settings.header_timeout_s)),
        f"{url}/ (web front-end; API docs at {docs}; Ctrl-C stops it)",
    )
    try:
        server.run(sockets=[sock])
    except SystemExit:
        if not server.started:
            cause = getattr(app.state, "startup_error", None)
            if cause is not None:
                fail(cause, debug)
        raise
    finally:
        uvicorn_log.removeFilter(hide)


def headers_timed(seconds: float) -> type[H11Protocol]:
    """Uvicorn's HTTP/1.1 protocol, closing a connection whose request headers have not all
    arrived ``seconds`` after its first byte (or after it opened).

    Uvicorn times out only idle kept-alive connections; a client sending its headers a byte
    at a time would hold its connection for ever. The body has its own deadline
    (``common.http.BodyGuardMiddleware``).
    """

    class HeadersTimedH11(H11Protocol):
        _headers_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            between_requests = self.cycle is None or self.cycle.response_complete
            if between_requests and self._headers_timer is None:
                self._arm()  # the first bytes of the next request on a kept-alive connection
            before = self.cycle
            super().data_received(data)
            if self.cycle is not before:  # its headers are in: the request has started
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._headers_timer = self.loop.call_later(seconds, self._too_slow)

        def _disarm(self) -> None:
            if self._headers_timer is not None:
                self._headers_timer.cancel()
                self._headers_timer = None

        def _too_slow(self) -> None:
            self._headers_timer = None
            if not self.transport.is_closing():
                log.warning("closed a connection whose headers took over %g s", seconds)
                self.transport.close()

    return HeadersTimedH11


class _Server(uvicorn.Server):
    """Uvicorn, saying where it serves once the app has started (it is given the socket)."""

    def __init__(self, config: uvicorn.Config, url: str) -> None:
        super().__init__(config)
        self.url = url

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            log.info("serving on %s", self.url)


def fail(error: StartupError, debug: bool) -> NoReturn:
    if debug:
        log.error("start failed", exc_info=error)
    print(f"error: {error}", file=sys.stderr)
    raise SystemExit(1)
