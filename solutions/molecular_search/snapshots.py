"""Arrays derived from a whole collection, kept in memory until the collection changes.

Substructure search screens every molecule's pattern fingerprint, and on Milvus Lite
similarity scans every Morgan fingerprint. Both read the searchable rows from SQL (the items
Milvus answers for) once, and again after an add or a delete (``Collection.version``). A
dropped collection's arrays go with its ``Collection`` object; one re-created under the same
name is another object, so it is read afresh.
"""

import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from common import Collection

T = TypeVar("T")


class Snapshots(Generic[T]):
    """One ``build(rows)`` per collection and version, where rows are ``(id, *columns)``."""

    def __init__(self, columns: Sequence[str], build: Callable[[list[tuple[Any, ...]]], T]):
        self._columns = list(columns)
        self._build = build
        self._cache: weakref.WeakKeyDictionary[Collection, tuple[tuple[int, int], T]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def get(self, collection: Collection) -> T:
        with self._lock:
            cached = self._cache.get(collection)
            if cached is not None and cached[0] == collection.version:
                return cached[1]
            # The version is read before the rows: a write landing during the scan leaves a
            # snapshot marked older than it is, read again next time, never a stale one kept.
            version = collection.version
            built = self._build(collection.scan(self._columns))
            self._cache[collection] = (version, built)
            return built
