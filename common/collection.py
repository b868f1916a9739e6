"""One collection over both stores: ids, write ordering, dedupe and crash recovery.

Invariant: every id in Milvus has a row in SQL, and a search only returns ids whose row
is ``ready``. The writes are ordered to keep it true at every instant:

* add:    SQL rows ``pending`` -> Milvus insert -> SQL rows ``ready`` + full-text index rows
* delete: SQL rows ``deleting`` -> Milvus delete -> SQL rows + full-text index rows deleted
* drop:   registry ``dropping`` -> Milvus drop -> SQL tables drop -> registry row deleted

The full-text index (``common.lexical``, for apps whose record declares ``fulltext`` fields)
lives in the record database and is written in the same transaction as the ``ready`` state,
so it holds exactly the ready ids; recovery also fills it for collections made without one.

If anything fails in between, the step is compensated at once; if the process dies,
``Collections.recover()`` removes every ``pending`` or ``deleting`` id from both stores and
finishes interrupted drops: at the next start, and in the other processes of the app once
the dead one's lease expires (``common.leases``). Both stores then hold the same ids.

Writes to one collection (add, delete, create, drop, recovery) hold its lock in every
process (``RecordStore.lock``: a MySQL named lock, which dies with its holder's
connection). So whoever holds it and finds ``pending`` rows knows that no live process is
writing them: they are debris of a dead or failed write, safe to remove.

Ids are content-derived: 63 bits of SHA-256 of the item's key, so loading the same data
twice finds the ids already present and adds nothing (first write wins).
"""

import hashlib
import logging
import threading
import uuid
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Table
from sqlalchemy.exc import IntegrityError

from common.bulk_import import ImportFiles
from common.errors import BackendUnavailable, Conflict, InvalidInput, NotFound
from common.lexical import LexicalIndex, terms
from common.media import MediaStore
from common.names import check_name, physical_name
from common.record_store import DELETING, PENDING, READY, RecordField, RecordStore
from common.records import Record, filter_fields, fulltext_fields, record_fields
from common.registry import Registered, Registry
from common.vector_store import ScalarKind, VectorIndex, VectorStore

log = logging.getLogger(__name__)

# Milvus answers at most 16,384 results per search.
MAX_RESULTS = 16_384


def content_id(key: str | bytes) -> int:
    """A stable positive 63-bit id derived from an item's content key."""
    data = key.encode("utf-8") if isinstance(key, str) else key
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big") >> 1


@dataclass(frozen=True)
class CollectionSpec:
    """How one collection is stored: its vectors, its record columns, the columns Milvus
    also holds so that searches can filter on them, and the columns whose words are indexed
    for full-text search."""

    index: VectorIndex
    fields: tuple[RecordField, ...]
    filter_fields: Mapping[str, ScalarKind] = field(default_factory=dict)
    fulltext_fields: tuple[str, ...] = ()

    @classmethod
    def of(cls, record: type[Record], index: VectorIndex) -> "CollectionSpec":
        """The spec of an app's collections, from its record model and its index."""
        return cls(index, record_fields(record), filter_fields(record), fulltext_fields(record))


@dataclass(frozen=True)
class Entry:
    """One item ready to store: its id, its vector, its record columns and its files."""

    id: int
    vector: Any
    record: Mapping[str, Any]
    # kind -> the file's bytes, or a file to copy (a large original); see media.py
    files: Mapping[str, bytes | Path] = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    id: int
    score: float
    record: dict[str, Any]


class Storage:
    """The two stores of one process; shared by every app running in it."""

    def __init__(
        self,
        vectors: VectorStore,
        records: RecordStore,
        media: MediaStore | None = None,
        imports: Path | None = None,
    ) -> None:
        """``imports``: where bulk import files are written for the Milvus server to read
        (``None``: loads never bulk-import)."""
        self.vectors = vectors
        self.records = records
        self.media = media
        self.imports = imports
        records.create_system_tables()

    def close(self) -> None:
        self.vectors.close()
        self.records.close()

    def check(self) -> tuple[bool, dict[str, str]]:
        """Ping both backends: whether both answer, and each one's version or why not."""
        report = {"milvus": self.vectors.capabilities.version, "sql": self.records.engine.name}
        healthy = True
        for key, ping in (("milvus", self.vectors.ping), ("sql", self.records.ping)):
            try:
                ping()
            except BackendUnavailable as error:
                healthy = False
                report[key] = f"unavailable: {error.message}"
        return healthy, report


class Collection:
    """A named collection of one app: search, add, get, delete, count."""

    def __init__(
        self,
        storage: Storage,
        name: str,
        physical: str,
        spec: CollectionSpec,
        options: Mapping[str, Any] | None = None,
        companions: "Mapping[str, Collections] | None" = None,
        registry: Registry | None = None,
    ) -> None:
        self.storage = storage
        self.name = name
        self.physical = physical
        self.spec = spec
        self.options: dict[str, Any] = dict(options or {})
        self._companions = dict(companions or {})
        self.table: Table = storage.records.table(physical, spec.fields)
        self.lexical = LexicalIndex(storage.records, physical) if spec.fulltext_fields else None
        self._registry = registry
        self.dropped = False  # set under the write lock by ``Collections.drop``
        # Milvus's timestamp of the latest write from any process (from the registry), which
        # searches wait for; 0 on Milvus Lite.
        self.written_ts = 0
        self._writes = 0  # adds and deletes made by this process

    @property
    def version(self) -> tuple[int, int]:
        """Changes with every add and delete, from this process or (on a Milvus server)
        another: lets an app cache what it derives from the whole collection (e.g. a
        substructure screen) and know when it is stale."""
        return self._writes, self.written_ts

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold this collection for a write made of several (a video's faces, then its
        frames): no other write, recovery or drop, in any process, comes in between."""
        with self._writing():
            yield

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the collection for one write, in every process; 404 if it was dropped."""
        with self._records.lock(self.physical):
            self._check_not_dropped()
            yield

    def _saw_write(self, written_ts: int, connection: Any) -> None:
        """Note a write of this process, in the transaction that makes it visible."""
        self._writes += 1
        if written_ts and self._registry is not None:
            self._registry.record_write(self.physical, written_ts, connection)
            self.written_ts = max(self.written_ts, written_ts)

    def has_companion(self, kind: str) -> bool:
        """Whether the companion of this kind exists (without making it)."""
        return kind in self._companions and self._companions[kind].exists(self.name)

    def companion(self, kind: str) -> "Collection":
        """This collection's companion of another kind (e.g. a video collection's faces):
        a collection of the same name in the app's ``<namespace>_<kind>`` namespace, made
        when first asked for and dropped with this one."""
        if kind not in self._companions:
            raise KeyError(f"collection {self.name!r} has no companion {kind!r}")
        return self._companions[kind].get_or_create(self.name)

    @property
    def _vectors(self) -> VectorStore:
        return self.storage.vectors

    @property
    def _records(self) -> RecordStore:
        return self.storage.records

    def stored_ids(self, ids: Sequence[int]) -> set[int]:
        """Which ids are stored and searchable (used to skip duplicates before encoding)."""
        states = self._records.states(self.table, list(ids))
        return {i for i, state in states.items() if state == READY}

    def add(self, entries: Sequence[Entry]) -> tuple[list[int], list[int]]:
        """Store entries; return (added ids, duplicate ids). Duplicates are left as they are."""
        with self._writing():
            return self._add(entries, self._write_vectors)

    @contextmanager
    def importing(self) -> Iterator["BulkLoad"]:
        """A bulk load, for millions of items: its ``add`` works as the collection's, but the
        rows stay pending while the vectors go to import files; ``commit`` has Milvus import
        the files and turns every row ready at once. Holds the collection throughout (other
        writes to it wait, then get 503). Unless its import succeeds, all of it is rolled back."""
        if self.storage.imports is None:
            raise RuntimeError("this storage has no folder for bulk import files")
        files = ImportFiles(
            self.storage.imports / f"{self.physical}-{uuid.uuid4().hex}",
            self.spec.index.kind,
            self.spec.index.dim,
            self.spec.filter_fields,
        )
        load = BulkLoad(self, files)
        try:
            with self._writing():
                try:
                    yield load
                finally:
                    # Once imported, a failure to mark the rows ready is handled as an add's.
                    if not load.imported and load.staged:
                        log.warning("bulk load into %s rolled back", self.physical)
                        self._undo(list(load.staged))
        finally:
            files.remove()

    def _add(
        self,
        entries: Sequence[Entry],
        write_vectors: Callable[[Sequence[Entry]], None],
        staged: Container[int] = (),
    ) -> tuple[list[int], list[int]]:
        """``add`` under the collection's lock, with how the new entries' vectors are written;
        ``staged``: ids pending for the caller itself (a bulk load's), which are duplicates."""
        unique: dict[int, Entry] = {}
        for entry in entries:
            unique.setdefault(entry.id, entry)
        states = self._records.states(self.table, list(unique))
        # Left by a write that failed and could not be rolled back (a backend was down):
        # not a duplicate, but debris to clear before writing the item again.
        stale = [i for i, state in states.items() if state != READY and i not in staged]
        if stale:
            self._clear(stale)
        stored = {i for i, state in states.items() if state == READY or i in staged}
        new = [e for i, e in unique.items() if i not in stored]
        duplicates = [e.id for e in entries if e.id in stored or unique[e.id] is not e]
        if not new:
            return [], duplicates
        try:
            self._write_files(new)
            self._records.insert_pending(self.table, [{"id": e.id, **e.record} for e in new])
        except IntegrityError:
            # Another writer stored some of these ids since we looked; treat them as
            # duplicates rather than failing the batch.
            return self._add_one_by_one(new, duplicates, write_vectors)
        except Exception:
            self._undo([e.id for e in new], files_only=True)
            raise
        write_vectors(new)
        return [e.id for e in new], duplicates

    def _check_not_dropped(self) -> None:
        """404 if the collection was dropped; else note its latest write from any process."""
        row = self._registry.find(self.name) if self._registry is not None else None
        if self.dropped or (self._registry is not None and row is None):
            raise NotFound(f"collection {self.name!r} was dropped")
        if row is not None:
            self.written_ts = max(self.written_ts, row.written_ts)

    def _add_one_by_one(
        self,
        entries: list[Entry],
        duplicates: list[int],
        write_vectors: Callable[[Sequence[Entry]], None],
    ) -> tuple[list[int], list[int]]:
        added = []
        for entry in entries:
            try:
                self._records.insert_pending(self.table, [{"id": entry.id, **entry.record}])
            except IntegrityError:
                duplicates.append(entry.id)
                continue
            write_vectors([entry])
            added.append(entry.id)
        return added, duplicates

    def _filter_values(self, entry: Entry) -> dict[str, Any]:
        """The record's columns Milvus also holds, to filter searches on."""
        return {f: entry.record[f] for f in self.spec.filter_fields}

    def _write_vectors(self, entries: Sequence[Entry]) -> None:
        ids = [e.id for e in entries]
        kind = self.spec.index.kind
        rows = [
            {"id": e.id, "vector": _vector_value(e.vector, kind), **self._filter_values(e)}
            for e in entries
        ]
        try:
            written_ts = self._vectors.insert(self.physical, rows)
        except Exception:
            log.exception("storing %d vectors in %s failed; rolling back", len(ids), self.physical)
            self._undo(ids)
            raise
        texts = [(e.id, self._text(e.record)) for e in entries] if self.lexical else []
        self._mark_ready(ids, texts, written_ts)

    def _mark_ready(
        self, ids: Sequence[int], texts: list[tuple[int, str]], written_ts: int
    ) -> None:
        """Make written items searchable: their rows ready and their words indexed, in one
        transaction (and the write's timestamp noted in it)."""
        try:
            with self._records.transaction() as connection:
                self._records.set_state(self.table, ids, READY, connection)
                if self.lexical is not None:
                    self.lexical.add(texts, connection)
                self._saw_write(written_ts, connection)
        except Exception:
            log.exception("marking %d items of %s ready failed", len(ids), self.physical)
            self._undo_unless_ready(ids)
            raise

    def _text(self, record: Mapping[str, Any]) -> str:
        """What the full-text index holds of a record: its ``fulltext`` fields, one per line."""
        return "\n".join(str(record[f]) for f in self.spec.fulltext_fields if record.get(f))

    def _clear(self, ids: Sequence[int]) -> None:
        """Remove what an interrupted write left of ``ids``, once any bulk import it had
        started has ended (its rows would otherwise appear after they were removed)."""
        self._vectors.wait_for_imports(self.physical)
        self._remove(ids)

    def _remove(self, ids: Sequence[int]) -> None:
        """Delete ids from both stores and their files, in the safe order."""
        written_ts = self._vectors.delete(self.physical, ids)
        self._delete_rows(ids, written_ts)
        self._delete_files(ids)

    def _delete_rows(self, ids: Sequence[int], written_ts: int = 0) -> None:
        with self._records.transaction() as connection:
            self._records.delete_rows(self.table, ids, connection)
            if self.lexical is not None:
                self.lexical.delete(ids, connection)
            self._saw_write(written_ts, connection)

    def _undo(self, ids: Sequence[int], *, files_only: bool = False) -> None:
        """Roll back a failed add in the safe order: vectors, then rows, then files. It stops
        at the first step that fails (a backend may be down): the rows stay marked pending,
        and the next add of the same items or the next start removes what is left in both
        stores. Deleting the rows while the vectors might still be in Milvus would leave
        vectors no recovery can find."""
        steps: list[Callable[[], object]] = [lambda: self._delete_files(ids)]
        if not files_only:
            steps = [
                lambda: self._vectors.delete(self.physical, ids),
                lambda: self._delete_rows(ids),
                *steps,
            ]
        for step in steps:
            try:
                step()
            except Exception:
                log.warning("rollback of %d ids of %s stopped", len(ids), self.physical)
                return

    def _undo_unless_ready(self, ids: Sequence[int]) -> None:
        """After the transaction marking items ready failed: it may have committed and only
        its answer been lost. Undo the items still not ready; if SQL cannot say, leave both
        stores as they are (pending rows with their vectors, which recovery clears)."""
        try:
            states = self._records.states(self.table, list(ids))
        except Exception:
            log.warning("cannot tell whether %d items of %s were stored", len(ids), self.physical)
            return
        not_ready = [i for i in ids if states.get(i) != READY]
        if not_ready:
            self._undo(not_ready)

    def _write_files(self, entries: Sequence[Entry]) -> None:
        media = self.storage.media
        for entry in entries:
            if entry.files and media is None:
                raise RuntimeError("this storage has no media store for item files")
            for kind, data in entry.files.items():
                media.write(self.physical, entry.id, kind, data)  # type: ignore[union-attr]

    def _delete_files(self, ids: Sequence[int]) -> None:
        if self.storage.media is not None:
            self.storage.media.delete(self.physical, ids)

    def media_path(self, item_id: int, kind: str) -> Path:
        """The file of a stored item (404 if the item or the file does not exist)."""
        self.get(item_id)
        if self.storage.media is None:
            raise NotFound(f"collection {self.name!r} stores no files")
        path = self.storage.media.path(self.physical, item_id, kind)
        if not path.is_file():
            raise NotFound(f"item {item_id} has no {kind}")
        return path

    def flush(self) -> None:
        """After a bulk load: make the new vectors searchable through the index."""
        self._vectors.flush(self.physical)

    def search(
        self,
        vectors: np.ndarray | Sequence[Any],
        top_k: int,
        where: Mapping[str, str | int] | None = None,
        where_not: Mapping[str, str | int] | None = None,
    ) -> list[list[Match]]:
        """Top-k matches per query vector, ranked by Milvus, records fetched in one query;
        ``where`` and ``where_not``: fields (filterable ones) that must, or must not, equal
        the given values."""
        hits = self._vectors.search(
            self.physical, self.spec.index, vectors, top_k, where, where_not, self.written_ts
        )
        wanted = list({hit.id for row in hits for hit in row})
        records = self._records.fetch(self.table, wanted)
        return [
            [Match(h.id, h.score, records[h.id]) for h in row if h.id in records] for row in hits
        ]

    def search_above(
        self, vector: Any, min_score: float, limit: int = MAX_RESULTS
    ) -> tuple[list[Match], bool]:
        """Every match scoring at least ``min_score`` (up to ``limit``); and whether it was cut.

        Asks Milvus for 64 results, then four times more while the last one still qualifies.
        """
        k = min(64, limit)
        while True:
            index = self.spec.index
            hits = self._vectors.search(self.physical, index, [vector], k, after=self.written_ts)[0]
            if len(hits) < k or hits[-1].score < min_score or k >= limit:
                break
            k = min(k * 4, limit)
        qualifying = [hit for hit in hits if hit.score >= min_score]
        records = self._records.fetch(self.table, [hit.id for hit in qualifying])
        matches = [Match(h.id, h.score, records[h.id]) for h in qualifying if h.id in records]
        return matches, len(qualifying) >= limit

    def lexical_search(self, query: str, top_k: int) -> list[Match]:
        """The ``top_k`` items whose ``fulltext`` fields best match the words of ``query``,
        best first, scored by the record database (bm25 on SQLite, InnoDB's relevance on
        MySQL: higher is better, the two scales differ). 422 if ``query`` has no words."""
        if self.lexical is None:
            raise RuntimeError(f"collection {self.name!r} has no full-text index")
        if not terms(query):
            raise InvalidInput("the query has no words to search for (only punctuation?)")
        hits = self.lexical.search(query, top_k)
        records = self._records.fetch(self.table, [item_id for item_id, _ in hits])
        return [Match(i, score, records[i]) for i, score in hits if i in records]

    def vectors(self, ids: Sequence[int]) -> dict[int, Any]:
        """The stored vectors of the given ids (missing ids are left out)."""
        return self._vectors.vectors(self.physical, list(ids), self.written_ts) if ids else {}

    def records(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Searchable items' records by id (missing ids are left out)."""
        return self._records.fetch(self.table, list(ids))

    def get(self, item_id: int) -> dict[str, Any]:
        record = self._records.fetch(self.table, [item_id]).get(item_id)
        if record is None:
            raise NotFound(f"no item {item_id} in collection {self.name!r}")
        return record

    def vector(self, item_id: int) -> Any:
        self.get(item_id)
        found = self._vectors.vectors(self.physical, [item_id], self.written_ts)
        if item_id not in found:
            raise NotFound(f"no vector for item {item_id} in collection {self.name!r}")
        return found[item_id]

    def where(
        self,
        equals: Mapping[str, Any],
        *,
        order_by: Sequence[str] = ("id",),
        offset: int = 0,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Searchable records whose fields equal the given values (e.g. the frames of one
        video), ordered by the given fields."""
        return self._records.select(
            self.table, equals, order_by=order_by, offset=offset, limit=limit
        )

    def scan(self, columns: Sequence[str]) -> list[tuple[Any, ...]]:
        """``(id, *columns)`` of every searchable item, for apps that screen a whole collection."""
        return self._records.scan(self.table, columns)

    def page(self, offset: int, limit: int) -> list[dict[str, Any]]:
        return self._records.page(self.table, offset, limit)

    def count(self) -> int:
        return self._records.count(self.table)

    def delete(self, ids: Sequence[int]) -> list[int]:
        """Delete the given ids; return those that existed."""
        with self._writing():
            present = sorted(self._records.existing_ids(self.table, list(ids)))
            if present:
                self._records.set_state(self.table, present, DELETING)
                self._remove(present)
            return present

    def recover(self) -> int:
        """Remove from both stores every id an interrupted add or delete left behind (by a
        dead process, or a write that failed and could not be undone)."""
        with self._writing():
            stale = self._records.ids_in_state(self.table, PENDING) + self._records.ids_in_state(
                self.table, DELETING
            )
            if stale:
                self._clear(stale)
                log.warning("recovered %s: removed %d interrupted items", self.physical, len(stale))
            if self.lexical is not None:
                self._repair_lexical(self.lexical)
            media = self.storage.media
            if media is not None:  # files written just before a crash, with no row
                orphans = media.item_ids(self.physical) - self._records.all_ids(self.table)
                media.delete(self.physical, orphans)
                media.remove_partial_writes(self.physical)
            return len(stale)

    def _repair_lexical(self, lexical: LexicalIndex) -> None:
        """Make the full-text index hold exactly the ready ids: creates and fills it for a
        collection made before its app indexed text (writes keep it exact otherwise)."""
        lexical.create()
        ready = set(self._records.ids_in_state(self.table, READY))
        indexed = lexical.ids()
        missing, extra = sorted(ready - indexed), sorted(indexed - ready)
        lexical.delete(extra)
        for start in range(0, len(missing), 1000):
            part = self._records.fetch(self.table, missing[start : start + 1000])
            lexical.add((i, self._text(record)) for i, record in part.items())
        if missing or extra:
            log.warning(
                "repaired the full-text index of %s: %d added, %d removed",
                self.physical,
                len(missing),
                len(extra),
            )


class BulkLoad:
    """A bulk load into one collection, under its lock (see ``Collection.importing``)."""

    def __init__(self, collection: Collection, files: ImportFiles) -> None:
        self.collection = collection
        self.files = files
        self.staged: set[int] = set()  # ids this load wrote, pending until the import
        self.imported = False
        self._texts: list[tuple[int, str]] = []

    def add(self, entries: Sequence[Entry]) -> tuple[list[int], list[int]]:
        """As ``Collection.add``; the new entries are searchable once committed."""
        return self.collection._add(entries, self._stage, self.staged)

    def commit(self) -> None:
        """Import the files and make every row of the load searchable; raises (and the
        load is rolled back) if Milvus fails the import."""
        collection = self.collection
        if self.staged:
            parts = self.files.finish()
            collection._vectors.import_files(collection.physical, parts, len(self.staged))
            self.imported = True
            # An import returns no timestamp: the one after the latest write stands for it
            # (the rows are searchable already; it tells other processes the data changed).
            collection._mark_ready(list(self.staged), self._texts, collection.written_ts + 1)

    def _stage(self, entries: Sequence[Entry]) -> None:
        collection = self.collection
        self.files.add([(e.id, e.vector, collection._filter_values(e)) for e in entries])
        self.staged.update(e.id for e in entries)
        if collection.lexical is not None:
            self._texts.extend((e.id, collection._text(e.record)) for e in entries)


# Turns a collection's options (already validated by the app's model) into its spec; raises
# an AppError for options the connected Milvus cannot honour.
SpecFor = Callable[[Mapping[str, Any]], CollectionSpec]


class Collections:
    """The collections of one app (its namespace).

    They share one spec, unless the app lets each collection choose options (``spec_for``):
    the options are kept in the registry and the collection's spec follows from them.
    ``companions``: other kinds of vector the app keeps per collection (kind: spec), each in
    a namespace of its own (``<namespace>_<kind>``); see ``Collection.companion``.
    """

    def __init__(
        self,
        storage: Storage,
        namespace: str,
        spec: "CollectionSpec | SpecFor",
        default_options: Mapping[str, Any] | None = None,
        companions: Mapping[str, CollectionSpec] | None = None,
    ) -> None:
        self.storage = storage
        self.namespace = check_name(namespace, what="namespace")
        self.companions = {
            kind: Collections(storage, f"{self.namespace}_{kind}", companion)
            for kind, companion in (companions or {}).items()
        }
        self.spec_for: SpecFor = spec if callable(spec) else (lambda _options: spec)
        self.registry = Registry(storage.records.engine, self.namespace)
        self._default_options = dict(default_options or {})
        self._open: dict[str, Collection] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return [row.name for row in self.registry.ready()]

    def all(self) -> list[Collection]:
        """Every ready collection, by name, from one registry query."""
        return [self._collection(row) for row in self.registry.ready()]

    def counts(self, collections: Sequence[Collection]) -> dict[str, int]:
        """Searchable items per collection name, in one SQL round trip."""
        counted = self.storage.records.counts([c.table for c in collections])
        return {c.name: counted[c.table.name] for c in collections}

    def exists(self, name: str) -> bool:
        return self.registry.find(check_name(name)) is not None

    def get(self, name: str) -> Collection:
        row = self.registry.find(check_name(name))
        if row is None:
            raise NotFound(f"no collection {name!r}")
        return self._collection(row)

    def _collection(self, row: Registered) -> Collection:
        with self._lock:
            opened = self._open.get(row.name)
            # Another process may have dropped it and created it again with other options.
            if opened is None or opened.options != row.options:
                spec = self.spec_for(row.options)
                opened = Collection(
                    self.storage,
                    row.name,
                    row.physical,
                    spec,
                    row.options,
                    self.companions,
                    self.registry,
                )
                self._open[row.name] = opened
            opened.written_ts = max(opened.written_ts, row.written_ts)
            return opened

    def create(self, name: str, options: Mapping[str, Any] | None = None) -> Collection:
        """Create a collection in both stores; 409 if it exists.

        ``options`` are the app's per-collection choices, validated by its model; the
        resulting spec is checked before anything is written.
        """
        physical = physical_name(self.namespace, name)
        options = {**self._default_options, **(options or {})}
        spec = self.spec_for(options)
        with self.storage.records.lock(physical):
            if self.registry.find(name) is not None:
                raise Conflict(f"collection {name!r} already exists")
            self.registry.begin_create(name, physical, options)
            records = self.storage.records
            try:
                if self.storage.vectors.exists(physical):
                    self.storage.vectors.drop(physical)
                self.storage.vectors.create(physical, spec.index, spec.filter_fields)
                records.drop_table(records.table(physical, spec.fields))
                records.create_table(records.table(physical, spec.fields))
                LexicalIndex(records, physical).drop()
                if spec.fulltext_fields:
                    LexicalIndex(records, physical).create()
            except Exception:
                self.registry.forget(physical)
                raise
            self.registry.set_state(physical, "ready")
        return self._collection(Registered(name, physical, "ready", options))

    def get_or_create(self, name: str) -> Collection:
        try:
            return self.get(name)
        except NotFound:
            try:
                return self.create(name)
            except Conflict:
                return self.get(name)

    def drop(self, name: str) -> None:
        physical = physical_name(self.namespace, check_name(name))
        # An add or delete under way, in any process, finishes first.
        with self.storage.records.lock(physical):
            row = self.registry.find(name)
            if row is None:
                raise NotFound(f"no collection {name!r}")
            for companions in self.companions.values():
                if companions.exists(name):
                    companions.drop(name)
            self.registry.set_state(row.physical, "dropping")
            with self._lock:
                dropped = self._open.pop(name, None)
            if dropped is not None:
                dropped.dropped = True
            self._finish_drop(row)

    def _finish_drop(self, row: Registered) -> None:
        if self.storage.vectors.exists(row.physical):
            self.storage.vectors.drop(row.physical)
        fields = self.spec_for(row.options).fields
        self.storage.records.drop_table(self.storage.records.table(row.physical, fields))
        LexicalIndex(self.storage.records, row.physical).drop()
        if self.storage.media is not None:
            self.storage.media.drop(row.physical)
        self.registry.forget(row.physical)

    def recover(self) -> None:
        """Finish what a killed process left half done: drops, creates, adds and deletes."""
        for companions in self.companions.values():
            companions.recover()
            # A companion whose collection is gone (killed between the two drops).
            kept = {row.name for row in self.registry.all() if row.state == "ready"}
            for name in set(companions.names()) - kept:
                companions.drop(name)
        for row in self.registry.all():
            if row.state != "ready":
                self._finish_interrupted(row)
                continue
            if not self.storage.vectors.exists(row.physical):
                raise BackendUnavailable(
                    f"collection {row.physical!r} is registered in SQL but missing in Milvus "
                    f"({self.storage.vectors.uri}); is SEARCH_MILVUS_URI pointing at the right "
                    "Milvus?"
                )
            self.storage.vectors.load(row.physical)
            self._collection(row).recover()

    def _finish_interrupted(self, row: Registered) -> None:
        """Finish a create or drop that its process did not (unless one is under way)."""
        with self.storage.records.lock(row.physical):
            current = {r.physical: r for r in self.registry.all()}.get(row.physical)
            if current is not None and current.state != "ready":
                log.warning("finishing interrupted %s of %s", current.state, current.physical)
                self._finish_drop(current)


def _vector_value(vector: Any, kind: str) -> Any:
    if kind == "binary":
        return bytes(vector)
    return np.asarray(vector, dtype=np.float32).tolist()
