"""The HTTP surface every app shares: one error shape, request ids, body limits, logging."""

import asyncio
import contextvars
import logging
import re
import sys
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from pymilvus import MilvusException
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.errors import AppError
from common.failures import explain

log = logging.getLogger(__name__)

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
    503: "backend_unavailable",
    507: "insufficient_storage",
}


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. `not_found`.")
    message: str = Field(description="What went wrong, for people.")
    details: list[Any] = Field(default_factory=list, description="Per-field problems, if any.")
    request_id: str = Field(description="Also in the `X-Request-ID` response header.")


class ErrorResponse(BaseModel):
    """The shape of every error response of every app."""

    error: ErrorBody


# What ``responses=`` of a route takes: status -> OpenAPI response object.
Responses = dict[int | str, dict[str, Any]]


def json_example(example: Any) -> dict[str, Any]:
    """The OpenAPI ``content`` of a JSON answer with one example (for ``responses=``)."""
    return {"content": {"application/json": {"example": example}}}


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorResponse(
        error=ErrorBody(
            code=code, message=message, details=details or [], request_id=request_id_var.get()
        )
    )
    return JSONResponse(jsonable_encoder(body), status_code=status, headers=headers)


def answer(error: AppError) -> JSONResponse:
    """The response for an ``AppError``: its status, the error shape, its headers."""
    return error_response(
        error.status_code, error.code, error.message, error.details, error.headers() or None
    )


def respond_to(error: Exception) -> JSONResponse:
    """The response for an exception no route handled: what it means for the user if
    ``common.failures`` knows (an outage, a dropped collection, a full disk), else a 500.
    Either way the log gets the exception, with the request id."""
    explained = explain(error)
    if explained is None:
        log.error("unexpected error", exc_info=error)
        return error_response(500, "internal_error", "internal error; see the server log")
    log.warning("%s (%s)", explained.message, error)
    return answer(explained)


def url_for(request: Request, route: str, /, **path_params: Any) -> str:
    """The absolute URL of one of this app's routes.

    Unlike ``request.url_for``, which searches from the outermost app, this finds the route
    in the app serving the request: when several apps are mounted in one process (the
    launcher), each has its own ``get_job``.
    """
    path = request.scope.get("root_path", "") + _path_for(request.app, route, path_params)
    return str(request.url.replace(path=path, query=None, fragment=None))


def _path_for(app: FastAPI, route: str, path_params: dict[str, Any]) -> str:
    """``app.url_path_for``, with the route found once per name and parameter names.

    Starlette finds a route by trying every route in turn, raising on each one that is not
    it; a search answering ten results with two URLs each paid that twenty times. The path
    is found once with a marker in place of each parameter, and the markers are replaced.
    """
    templates: dict[tuple[str, tuple[str, ...]], str] | None = getattr(
        app.state, "url_templates", None
    )
    if templates is None:
        templates = app.state.url_templates = {}
    key = (route, tuple(sorted(path_params)))
    template = templates.get(key)
    if template is None:
        try:
            template = str(app.url_path_for(route, **{k: f"\0{k}\0" for k in key[1]}))
        except Exception:  # a parameter that must be a number, say: no template
            return str(app.url_path_for(route, **path_params))
        templates[key] = template
    for name, value in path_params.items():
        template = template.replace(f"\0{name}\0", str(value))
    return template


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_: Request, error: AppError) -> JSONResponse:
        if error.status_code >= 500:
            log.warning("%s: %s", error.code, error.message)
        return answer(error)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type")}
            for e in error.errors()
        ]
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(part) for part in first["loc"])
        return error_response(422, "invalid_input", f"{where}: {first['msg']}", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> JSONResponse:
        code = _CODES.get(error.status_code, "error")
        return error_response(
            error.status_code, code, str(error.detail), headers=getattr(error, "headers", None)
        )

    @app.exception_handler(DBAPIError)
    @app.exception_handler(MilvusException)
    async def _backend_error(_: Request, error: Exception) -> JSONResponse:
        return respond_to(error)


class _TrackedSend:
    """``send`` that remembers whether the response began (after that it can't be replaced)."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        self.started = self.started or message["type"] == "http.response.start"
        await self.send(message)


class UnexpectedErrorMiddleware:
    """The innermost layer: turn an unexpected exception into the error shape (500).

    Installed as a middleware rather than an exception handler so that the response still
    passes through the request-id and CORS layers (Starlette runs ``Exception`` handlers
    outside every middleware).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = _TrackedSend(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception as error:
            response = respond_to(error)  # a full disk, say, or a bug
            if tracked.started:
                raise
            await response(scope, receive, send)


class RequestContextMiddleware:
    """Give every request an id (the client's ``X-Request-ID`` if sane), echo it, log it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # An app mounted in the launcher: the launcher's own layer gave the request its id.
        if scope["type"] != "http" or "request_id" in scope:
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _SAFE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex[:16]
        scope["request_id"] = request_id
        token = request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


class BodyGuardMiddleware:
    """Refuse request bodies over the size limit (413, whether or not Content-Length is sent)
    and bodies that take longer than ``timeout`` seconds to arrive (408: a slow or stalled
    client would otherwise hold its connection and its worker for as long as it likes)."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large()(scope, receive, send)
            return
        received = 0
        complete = False
        deadline = asyncio.get_running_loop().time() + self.timeout
        tracked = _TrackedSend(send)

        async def guarded_receive() -> Message:
            nonlocal received, complete
            if complete:  # the body is in: later receives wait for a disconnect, untimed
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                log.warning("cut off a client that sent its body too slowly")
                raise _Refused(self._too_slow()) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _Refused(self._too_large())
                complete = not message.get("more_body", False)
            return message

        try:
            await self.app(scope, guarded_receive, tracked)
        except _Refused as refused:
            if not tracked.started:
                await refused.response(scope, receive, send)

    def _too_large(self) -> JSONResponse:
        message = f"the request body is larger than {self.max_bytes} bytes"
        return error_response(413, "payload_too_large", message)

    def _too_slow(self) -> JSONResponse:
        message = f"the request body did not arrive within {self.timeout:g} s"
        return error_response(408, "request_timeout", message, headers={"Connection": "close"})


class _Refused(BaseException):
    """Raised through the app with the answer to send, so that no handler turns it into
    another status."""

    def __init__(self, response: JSONResponse) -> None:
        super().__init__()
        self.response = response


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is now (test runners and servers swap it)."""

    _search_handler = True

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def configure_logging(level: str) -> None:
    """Standard-library logging with the request id on every line; idempotent."""
    root = logging.getLogger()
    if any(getattr(h, "_search_handler", False) for h in root.handlers):
        root.setLevel(level.upper())
        return
    handler = _StderrHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")
    )
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # CPU feature probing
    logging.getLogger("mysql.connector").setLevel(logging.WARNING)  # auth plugin chatter
    # A traceback for every failed Milvus call (50 lines a request while Milvus is down); the
    # error handlers log each failure once, with the request id.
    logging.getLogger("pymilvus.decorators").setLevel(logging.CRITICAL)
