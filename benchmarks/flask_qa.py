"""The QA chatbot's ask, load and job routes on Flask, for ``benchmarks.frameworks``.

Everything but the web framework is the FastAPI app's own: the handler
(``solutions.qa_chatbot.routes.ask``), the encoder with its micro-batching, the stores, the
job runner (a thread, which is what Flask needs for a load to answer 202 at once), the
request models and the error shape. What FastAPI derives from the type hints is written out
here by hand, as a Flask app has to: reading and validating the body, checking the path,
mapping errors to statuses and the error shape, the request id. Nothing documents these
routes: Flask has no OpenAPI schema and no /docs.

    SEARCH_MILVUS_URI=... gunicorn -k gthread --threads 32 'benchmarks.flask_qa:create()'
"""

import asyncio
import atexit
import json
import uuid
from pathlib import Path
from typing import Any

from flask import Flask, Response, request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import HTTPException

from common.api.loads import LoadSource, start_load
from common.app import start_app
from common.context import AppContext
from common.errors import AppError, InvalidInput
from common.http import ErrorBody, ErrorResponse
from common.names import check_name
from common.sources import store_uploads
from solutions.qa_chatbot import routes
from solutions.qa_chatbot.app import LOADER, SOLUTION
from solutions.qa_chatbot.encoders import as_encoders
from solutions.qa_chatbot.settings import QASettings

REQUEST_ID = "X-Request-ID"


# -- by hand: what FastAPI derives from the signatures (validation, errors, request id) --


def json_of(model: BaseModel, status: int = 200, **headers: str) -> Response:
    return Response(model.model_dump_json(), status, headers, mimetype="application/json")


def error(status: int, code: str, message: str, details: list[Any] | None = None) -> Response:
    body = ErrorBody(code=code, message=message, details=details or [], request_id=request_id())
    return json_of(ErrorResponse(error=body), status)


def request_id() -> str:
    return str(getattr(request, "request_id", "-"))


def install_error_handlers(app: Flask) -> None:
    @app.before_request
    def _give_an_id() -> None:
        request.request_id = request.headers.get(REQUEST_ID, uuid.uuid4().hex)[:64]  # type: ignore[attr-defined]

    @app.after_request
    def _echo_the_id(response: Response) -> Response:
        response.headers[REQUEST_ID] = request_id()
        return response

    @app.errorhandler(ValidationError)
    def _invalid(failure: ValidationError) -> Response:
        details = [
            {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in failure.errors()
        ]
        where = ".".join(str(part) for part in details[0]["loc"])
        return error(422, "invalid_input", f"{where}: {details[0]['msg']}", details)

    @app.errorhandler(AppError)
    def _app_error(failure: AppError) -> Response:
        response = error(failure.status_code, failure.code, failure.message, failure.details)
        if failure.retry_after:
            response.headers["Retry-After"] = str(failure.retry_after)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(failure: HTTPException) -> Response:
        code = (failure.name or "error").lower().replace(" ", "_")
        return error(failure.code or 500, code, failure.description or code)


# -- the routes: the same handler and stores as the FastAPI app --


def create() -> Flask:
    """The Flask app, with its context started now (gunicorn calls this in each worker)."""
    settings = QASettings()
    context: AppContext = asyncio.run(start_app(SOLUTION, settings))
    atexit.register(context.runner.shutdown)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes
    install_error_handlers(app)

    @app.get("/health/live")
    def live() -> Response:
        return Response('{"status":"ok"}', mimetype="application/json")

    @app.get("/health/ready")
    def ready() -> Response:
        healthy, backends = context.storage.check()
        return Response(json.dumps(backends), 200 if healthy else 503, mimetype="application/json")

    @app.post("/collections/<name>/ask")
    def ask(name: str) -> Response:
        body = routes.AskRequest.model_validate_json(request.get_data())
        collection = context.collections.get(name)
        return json_of(routes.ask(body, collection, as_encoders(context.encoder), settings))

    @app.post("/collections/<name>/loads")
    def load(name: str) -> Response:
        check_name(name)  # before anything is stored, as FastAPI checks the path first
        uploads = request.files.getlist("file")
        if not uploads:
            raise InvalidInput("body.file: Field required")
        folder = store_uploads(
            [(u.filename or "upload", u.stream) for u in uploads],
            settings.upload_dir / uuid.uuid4().hex,
            LOADER.suffixes,
            settings.max_upload_bytes,
        )
        first = Path(uploads[0].filename or "upload").name
        label = first if len(uploads) == 1 else f"{len(uploads)} files"
        parser = LOADER.parser(settings, LOADER.options())
        source = LoadSource(label, folder, parser, "upload")
        job = start_load(context, name, source)
        return json_of(job, 202, Location=f"/jobs/{job.id}")

    @app.get("/jobs/<job_id>")
    def job(job_id: str) -> Response:
        return json_of(context.jobs.get(job_id))

    return app
