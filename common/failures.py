"""What an exception from Milvus, SQL or the disk means for a user, said without internals.

Requests and jobs meet the same failures: a backend that went away (503, try again), a
collection dropped while it was being read (404), a full disk (507). Everything else is a
bug: the user gets a sentence and the request or job id, the log gets the details.
"""

import errno

from pymilvus import MilvusException
from pymilvus.exceptions import ConnectError, MilvusUnavailableException
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from common.errors import AppError, BackendUnavailable, InsufficientStorage, NotFound

# Milvus: "collection not found" (code 100), and the legacy "CollectionNotExists" (4).
_MILVUS_NO_COLLECTION = {4, 100}
_MILVUS_NOT_LOADED = 101
_MILVUS_OUTAGE_WORDS = ("unavailable", "connect", "deadline", "not ready", "closed channel")
# SQL: SQLite's "no such table", MySQL's "Table ... doesn't exist".
_MYSQL_NO_TABLE = 1146

MILVUS_DOWN = "Milvus is unavailable"
MILVUS_LOADING = "Milvus is still loading the collection (it restarted)"
SQL_DOWN = "the SQL database is unavailable"
COLLECTION_GONE = "the collection was dropped while this was running"
DISK_FULL = "the server's disk is full"


def explain(error: BaseException) -> AppError | None:
    """The error a user should see for ``error``, or ``None`` if it is a bug."""
    if isinstance(error, AppError):
        return error
    if isinstance(error, MilvusException):
        return _milvus(error)
    if isinstance(error, DBAPIError):
        return _sql(error)
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return InsufficientStorage(DISK_FULL)
    return None


def _milvus(error: MilvusException) -> AppError | None:
    text = str(error).lower()
    if isinstance(error, MilvusUnavailableException | ConnectError) or any(
        word in text for word in _MILVUS_OUTAGE_WORDS
    ):
        return BackendUnavailable(MILVUS_DOWN)
    if error.code == _MILVUS_NOT_LOADED or "not loaded" in text:  # reloading after a restart
        return BackendUnavailable(MILVUS_LOADING)
    if error.code in _MILVUS_NO_COLLECTION or "collection not found" in text:
        return NotFound(COLLECTION_GONE)
    return None


def _sql(error: DBAPIError) -> AppError | None:
    number = getattr(error.orig, "errno", None)
    if number == _MYSQL_NO_TABLE or "no such table" in str(error.orig).lower():
        return NotFound(COLLECTION_GONE)
    if error.connection_invalidated or isinstance(error, OperationalError | InterfaceError):
        return BackendUnavailable(SQL_DOWN)
    return None


def job_failure(error: BaseException) -> str:
    """Why a load failed, in a sentence for people (the log has the exception)."""
    explained = explain(error)
    again = "run the load again (items already stored are skipped)"
    if isinstance(explained, BackendUnavailable):
        store = "The SQL database" if explained.message == SQL_DOWN else "Milvus"
        return f"{store} became unavailable during the load; {again} once it is back."
    if isinstance(explained, NotFound) and explained.message == COLLECTION_GONE:
        return "The collection was dropped during the load."
    if isinstance(explained, InsufficientStorage):
        return f"The server's disk filled up during the load; {again} once there is room."
    if explained is not None:
        return explained.message
    return "The load stopped on an internal error; the server log has details under the job's id."
