"""The finishing touches of every app's OpenAPI schema, which /docs and /redoc render."""

import json
from typing import Any

from fastapi import FastAPI

from common.http import ErrorBody, ErrorResponse

Schema = dict[str, Any]


def finish_openapi(app: FastAPI, default_collection: str) -> None:
    """Document what the app really does, once, when the schema is first asked for.

    * 422 answers have our error shape, not FastAPI's default ``HTTPValidationError``;
    * the ``{name}`` of every path, and ``<collection>`` in descriptions, show the app's own
      collection;
    * examples keep their ``null`` fields (FastAPI drops every ``None`` from the schema);
    * file fields also say ``format: binary``, by which Swagger UI offers a file chooser for
      each item of a list of files too;
    * every status the shared layers may answer is listed, with the error shape (see
      ``_document_errors``).
    """
    generate = app.openapi

    def openapi() -> Schema:
        if app.openapi_schema is None:
            text = json.dumps(generate()).replace(
                "#/components/schemas/HTTPValidationError", "#/components/schemas/ErrorResponse"
            )
            schema = json.loads(text)
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, model in (("ErrorResponse", ErrorResponse), ("ErrorBody", ErrorBody)):
                schemas.setdefault(
                    name, model.model_json_schema(ref_template="#/components/schemas/{model}")
                )
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            for operation in _operations(schema):
                if "description" in operation:  # a shared route's curl example
                    operation["description"] = operation["description"].replace(
                        "<collection>", default_collection
                    )
                for parameter in operation.get("parameters", []):
                    if parameter["in"] == "path" and parameter["name"] == "name":
                        parameter["schema"]["examples"] = [default_collection]
            _restore_nulls(schema)
            _mark_files(schema)
            _document_errors(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _operations(schema: Schema) -> list[Schema]:
    return [operation for item in schema.get("paths", {}).values() for operation in item.values()]


def _restore_nulls(schema: Schema) -> None:
    components = schema["components"]["schemas"]

    def resolve(part: Schema) -> Schema:
        ref = part.get("$ref", "")
        return components[ref.rsplit("/", 1)[1]] if ref else part

    def fill(example: Any, part: Schema) -> None:
        part = resolve(part)
        if isinstance(example, list) and "items" in part:
            for element in example:
                fill(element, part["items"])
        if not isinstance(example, dict):
            return
        for field, field_schema in part.get("properties", {}).items():
            nullable = {"type": "null"} in field_schema.get("anyOf", [])
            if field not in example and nullable and field in part.get("required", []):
                example[field] = None
            elif field in example:
                fill(example[field], field_schema)

    for component in components.values():
        for example in component.get("examples", []):
            fill(example, component)
    for operation in _operations(schema):
        bodies = [operation.get("requestBody", {}), *operation["responses"].values()]
        for body in bodies:
            for media in body.get("content", {}).values():
                if "example" in media:
                    fill(media["example"], media.get("schema", {}))
                for named in media.get("examples", {}).values():
                    fill(named.get("value"), media.get("schema", {}))


def _mark_files(schema: Schema) -> None:
    def visit(part: Any) -> None:
        if isinstance(part, dict):
            if part.get("contentMediaType") == "application/octet-stream":
                part.setdefault("format", "binary")
            for value in part.values():
                visit(value)
        elif isinstance(part, list):
            for value in part:
                visit(value)

    visit(schema["components"]["schemas"])


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds after which trying again may work.",
        "schema": {"type": "integer"},
    }
}
_BODY_ERRORS = {
    "400": "The body could not be parsed (malformed JSON or multipart, over 1,000 files).",
    "408": "The body did not arrive within `SEARCH_BODY_TIMEOUT_S` seconds.",
    "413": "The body is larger than `SEARCH_MAX_UPLOAD_BYTES`.",
}
_UNAUTHORIZED = "This route writes and the server sets `SEARCH_API_KEY`: send it as a bearer token."
_UNAVAILABLE = (
    "Milvus or the SQL database is unavailable, or too many queries are waiting for the "
    "encoder; try again after `Retry-After` seconds."
)
_INTERNAL = "A bug: the message gives the request id to find in the server log."


def _document_errors(schema: Schema) -> None:
    """List the statuses that the shared layers answer for any route they wrap, each with the
    error shape: body parsing, size and deadline (400, 408, 413), write access (401), a
    backend away (503), a bug (500); ``Retry-After`` where it is sent (429, 503, 507)."""
    shape = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
    for path, item in schema.get("paths", {}).items():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            added: dict[str, str] = {"500": _INTERNAL}
            if "requestBody" in operation:
                added.update(_BODY_ERRORS)
            if operation.get("security"):
                added["401"] = _UNAUTHORIZED
            if path.startswith(("/collections", "/jobs")):  # they read or write the stores
                added["503"] = _UNAVAILABLE
            for status, description in added.items():
                responses.setdefault(status, {"description": description, "content": shape})
            for status in ("429", "503", "507"):
                if status in responses:
                    responses[status].setdefault("headers", _RETRY_AFTER)
