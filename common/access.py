"""Who may write: the one dependency every route that changes data runs first.

Searches and reads are open. Routes that create, load, add, delete or cancel depend on
``authorize_write``, which by default checks ``SEARCH_API_KEY`` (when it is set) against an
``Authorization: Bearer`` header. A deployment with its own identity provider replaces it:

    app.dependency_overrides[authorize_write] = my_oauth2_check

where ``my_oauth2_check`` is any FastAPI dependency that raises (401/403) to refuse.
"""

import secrets
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from common.context import Context
from common.errors import Unauthorized

_bearer = HTTPBearer(
    auto_error=False,
    description="Only when the server sets `SEARCH_API_KEY`: routes that write need it.",
)


async def authorize_write(
    context: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Let the request write if no key is configured or it carries the right one."""
    key = context.settings.api_key
    if key is None:
        return
    given = credentials.credentials if credentials is not None else ""
    if not secrets.compare_digest(given.encode(), key.get_secret_value().encode()):
        raise Unauthorized("this route changes data: send Authorization: Bearer <SEARCH_API_KEY>")


WriteAccess = Depends(authorize_write)
