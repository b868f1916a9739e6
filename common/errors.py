"""One error type family and one JSON shape for every failure an API reports."""

from typing import Any


class AppError(Exception):
    """An error with an HTTP status and a stable machine-readable code."""

    status_code = 500
    code = "internal_error"
    retry_after: int | None = None  # seconds, sent as Retry-After: when trying again may work

    def __init__(self, message: str, *, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def headers(self) -> dict[str, str]:
        """Response headers that come with this error."""
        return {"Retry-After": str(self.retry_after)} if self.retry_after else {}


class Unauthorized(AppError):
    """No credentials, or wrong ones, for a route that needs them (see ``common.access``)."""

    status_code = 401
    code = "unauthorized"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class InvalidInput(AppError):
    status_code = 422
    code = "invalid_input"


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(AppError):
    status_code = 415
    code = "unsupported_media_type"


class TooManyJobs(AppError):
    """More loads are queued than ``SEARCH_MAX_QUEUED_JOBS`` allows."""

    status_code = 429
    code = "too_many_jobs"
    retry_after = 10


class InsufficientStorage(AppError):
    """An upload does not fit: the upload folder's limit or the disk itself is full."""

    status_code = 507
    code = "insufficient_storage"
    retry_after = 30


class BackendUnavailable(AppError):
    status_code = 503
    code = "backend_unavailable"
    retry_after = 5


class Overloaded(AppError):
    """Too many requests are already waiting for the same work (the encoder)."""

    status_code = 503
    code = "overloaded"
    retry_after = 1


class UnsupportedFeature(AppError):
    """The connected Milvus cannot do what a collection asks for (e.g. binary vectors on Lite)."""

    status_code = 422
    code = "unsupported_feature"


class StartupError(Exception):
    """Something an app needs at start is missing; the message names the cause and the fix."""


class MissingModel(StartupError):
    """A model's package is not installed; raised at startup, never during a request."""
