"""Vectors in Milvus, through pymilvus's MilvusClient, the same code for Milvus Lite and a server.

The store knows the two ways Milvus Lite differs from a server and refuses, with a clear
message, what Lite cannot do instead of silently doing something weaker:

* Lite has no BINARY_VECTOR field;
* Lite drops index build parameters given through ``MilvusClient.create_index``, so indexes
  are built through the ORM ``Collection.create_index`` (which keeps them on both) and read
  back to check that the connected Milvus kept them.

Searches of one vector each, made by concurrent requests, are sent as one search of many
(``nq > 1``) when they ask the same collection the same way: on Milvus Lite 32 searches
cost about a tenth of the time together that they cost apart (``common/batching.py``).
"""

import json
import logging
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
from pymilvus import Collection, DataType, MilvusClient, MilvusException, connections, utility
from pymilvus.client.types import BulkInsertState
from pymilvus.exceptions import SchemaNotReadyException

from common.batching import Gathering
from common.errors import BackendUnavailable, UnsupportedFeature

log = logging.getLogger(__name__)

VectorKind = Literal["float", "binary"]
ScalarKind = Literal["varchar", "int64"]

# Searches read their own writes from this process without paying for Strong consistency
# (which adds ~200 ms per search on a server); counts and gets that must see every write
# ask for Strong explicitly. Given the timestamp of a collection's latest write, made by
# any process (``insert`` returns it, the registry keeps it), a search waits only until
# Milvus shows that write: read-after-write across processes, without Strong's cost.
SEARCH_CONSISTENCY = "Session"
# Rows per insert request: 1,000 rows of 1280 floats are ~5 MB, far below gRPC's limit.
INSERT_BATCH = 1000
# Ids per delete request (the filter expression of 10,000 ids is ~200 KB).
DELETE_BATCH = 10_000
# The ORM calls (used where they return what MilvusClient's do not) retry for 210 s when
# Milvus is down; MilvusClient's fail at once. Given a timeout they stop retrying then.
ORM_TIMEOUT_S = 10
# How long a bulk import may take, from its files to every row being searchable.
IMPORT_TIMEOUT_S = 3600
_IMPORT_ENDED = {
    BulkInsertState.ImportCompleted,
    BulkInsertState.ImportFailed,
    BulkInsertState.ImportFailedAndCleaned,
}


class ImportFailed(Exception):
    """Milvus refused or failed a bulk import; none of its rows were stored."""


@dataclass(frozen=True)
class VectorIndex:
    """How one collection's vectors are stored, indexed and compared."""

    dim: int
    kind: VectorKind = "float"
    metric: str = "COSINE"
    index_type: str = "HNSW"
    build_params: Mapping[str, Any] = field(
        default_factory=lambda: {"M": 16, "efConstruction": 200}
    )
    search_params: Mapping[str, Any] = field(default_factory=lambda: {"ef": 64})

    def similarity(self, distance: float) -> float:
        """Turn what Milvus returns into a score where higher is more similar."""
        if self.metric in {"COSINE", "IP"}:
            return distance
        if self.metric == "JACCARD":
            return 1.0 - distance
        return -distance  # L2 and HAMMING: smaller distance, higher score


@dataclass(frozen=True)
class Hit:
    id: int
    score: float


@dataclass(frozen=True)
class _Search:
    """What one-vector searches must share to be sent as one."""

    name: str
    kind: VectorKind
    limit: int
    expression: str
    params: str  # the search parameters, as JSON
    after: int = 0  # Milvus's timestamp of a write the search must see (0: this process's)


@dataclass(frozen=True)
class Capabilities:
    is_lite: bool
    version: str

    @property
    def binary_vectors(self) -> bool:
        return not self.is_lite


class VectorStore:
    """A thin, typed wrapper over one MilvusClient connection."""

    def __init__(
        self,
        uri: str,
        token: str | None = None,
        *,
        search_batch: int = 32,
        search_queue: int = 256,
    ) -> None:
        """``search_batch``: most one-vector searches sent as one (1: each alone);
        ``search_queue``: most waiting, beyond which a search gets 503."""
        if uri.endswith(".db"):
            Path(uri).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        self.uri = uri
        self._alias = f"vector-store-{uuid.uuid4().hex}"
        self._orm_collections: dict[str, Collection] = {}
        try:
            self.client = MilvusClient(uri=uri, token=token or "")
            with _orm_api():
                connections.connect(alias=self._alias, uri=uri, token=token or "")
            version = str(self.client.get_server_version())
        except MilvusException as error:
            raise BackendUnavailable(f"cannot connect to Milvus at {uri}: {error}") from error
        self.capabilities = Capabilities(
            is_lite=uri.endswith(".db") or version.startswith("milvus_lite"), version=version
        )
        # No waiting for company: searches that arrive while one runs go together next.
        self._searches = (
            Gathering(
                lambda what, vectors: self._search(cast(_Search, what), vectors),
                name="Milvus searches",
                max_batch=search_batch,
                max_wait=0,
                max_waiting=search_queue,
            )
            if search_batch > 1
            else None
        )

    def close(self) -> None:
        if self._searches is not None:
            self._searches.close()
        with _orm_api():
            connections.disconnect(self._alias)
        self.client.close()
        if self.uri.endswith(".db"):
            # Milvus Lite serves each file from a thread of this process until told to stop.
            from milvus_lite import server_manager_instance

            server_manager_instance.release_server(self.uri)

    def ping(self) -> None:
        """Raise if Milvus does not answer."""
        try:
            self.client.list_collections()
        except MilvusException as error:
            raise BackendUnavailable(f"Milvus at {self.uri} is unavailable: {error}") from error

    def exists(self, name: str) -> bool:
        return bool(self.client.has_collection(name))

    def create(
        self, name: str, index: VectorIndex, filter_fields: Mapping[str, ScalarKind]
    ) -> None:
        """Create a collection with an ``id`` primary key we issue, its vector and filter fields."""
        if index.kind == "binary" and not self.capabilities.binary_vectors:
            raise UnsupportedFeature(
                "this Milvus (Milvus Lite) has no BINARY_VECTOR field; connect to a Milvus "
                "server or use a float-vector collection"
            )
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        vector_type = DataType.FLOAT_VECTOR if index.kind == "float" else DataType.BINARY_VECTOR
        schema.add_field("vector", vector_type, dim=index.dim)
        for field_name, kind in filter_fields.items():
            if kind == "varchar":
                # Milvus counts bytes, apps count characters: room for 256 of any kind.
                schema.add_field(field_name, DataType.VARCHAR, max_length=1024)
            else:
                schema.add_field(field_name, DataType.INT64)
        self._orm_collections.pop(name, None)
        self.client.create_collection(name, schema=schema)
        wanted = {
            "index_type": index.index_type,
            "metric_type": index.metric,
            "params": dict(index.build_params),
        }
        # The collection is empty, so the index exists at once: no need to wait for it
        # (waiting calls AllocTimestamp, which Milvus Lite does not implement).
        with _orm_api():
            Collection(name, using=self._alias).create_index("vector", wanted, sync=False)
        self._check_index(name, index)
        self.client.load_collection(name)

    def _check_index(self, name: str, index: VectorIndex) -> None:
        built = self.client.describe_index(name, "vector")
        kept = built.get("params", {}) if isinstance(built.get("params"), dict) else built
        lost = {k: v for k, v in index.build_params.items() if str(kept.get(k)) != str(v)}
        if built.get("index_type") != index.index_type or lost:
            self.client.drop_collection(name)
            raise UnsupportedFeature(
                f"Milvus ({self.capabilities.version}) did not keep the requested index "
                f"{index.index_type} with {dict(index.build_params)}; it built {built}"
            )

    def load(self, name: str) -> None:
        """Make a collection searchable (after a server restart it may need loading again)."""
        self.client.load_collection(name)

    def flush(self, name: str) -> None:
        """Seal what was inserted so it is searched through the index.

        Called once at the end of a bulk load. On Milvus Lite unsealed rows are scanned one
        by one: 1,000 1280-d vectors take ~75 ms per search before, ~2 ms after.
        """
        self.client.flush(name)

    def insert(self, name: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert rows, ``INSERT_BATCH`` per request (a long video's frames in one add would
        otherwise exceed the server's message size).

        Returns Milvus's timestamp of the write (0 on Milvus Lite, which keeps none), for
        searches in other processes to wait for (``search(after=...)``). MilvusClient does
        not return it; the ORM's insert does.
        """
        latest = 0
        collection = self._orm_collection(name)
        for start in range(0, len(rows), INSERT_BATCH):
            with _orm_api():
                batch = list(rows[start : start + INSERT_BATCH])
                result = collection.insert(batch, timeout=ORM_TIMEOUT_S)
            latest = max(latest, int(result.timestamp or 0))
        return latest

    def import_files(self, name: str, parts: Sequence[Sequence[Path]], rows: int) -> None:
        """Bulk-import ``rows`` rows, given as parts (each one NumPy file per field, at paths
        the Milvus server reads), and return once all of them are searchable.

        Raises ``ImportFailed`` if Milvus fails any part; the parts it completed stay (the
        caller deletes their ids). "Completed" is not yet searchable on Milvus 2.3: the new
        segments are loaded some seconds later, so this also waits for the count to grow.
        """
        before = self.count(name)
        with _orm_api():
            tasks = [
                utility.do_bulk_insert(
                    name, files=[str(path) for path in part], using=self._alias, timeout=60
                )
                for part in parts
            ]
        deadline = time.monotonic() + IMPORT_TIMEOUT_S
        for task in tasks:
            state = self._import_ended(task, deadline)
            if state.state != BulkInsertState.ImportCompleted:
                raise ImportFailed(state.failed_reason or state.state_name)
        while self.count(name) < before + rows:
            if time.monotonic() > deadline:
                raise ImportFailed(f"the imported rows were not searchable in {IMPORT_TIMEOUT_S} s")
            time.sleep(0.5)

    def _import_ended(self, task: int, deadline: float) -> BulkInsertState:
        while True:
            with _orm_api():
                state = utility.get_bulk_insert_state(task, using=self._alias, timeout=60)
            if state.state in _IMPORT_ENDED:
                return state
            if time.monotonic() > deadline:
                raise ImportFailed(f"the import did not end in {IMPORT_TIMEOUT_S} s")
            time.sleep(0.5)

    def wait_for_imports(self, name: str) -> None:
        """Until no bulk import into ``name`` is running (one a dead process started goes
        on without it): rows it would add after a clean-up could never be found again."""
        if self.capabilities.is_lite:
            return
        with _orm_api():
            tasks = utility.list_bulk_insert_tasks(
                collection_name=name, using=self._alias, timeout=60
            )
        running = [task.task_id for task in tasks if task.state not in _IMPORT_ENDED]
        if running:
            log.warning("waiting for %d bulk imports into %s to end", len(running), name)
        deadline = time.monotonic() + IMPORT_TIMEOUT_S
        for task in running:
            self._import_ended(task, deadline)

    def _orm_collection(self, name: str) -> Collection:
        if name not in self._orm_collections:
            try:
                with _orm_api():
                    collection = Collection(name, using=self._alias, timeout=ORM_TIMEOUT_S)
                self._orm_collections[name] = collection
            except SchemaNotReadyException as error:  # what the ORM says for a missing one
                raise MilvusException(100, f"collection not found[{name}]") from error
        return self._orm_collections[name]

    def search(
        self,
        name: str,
        index: VectorIndex,
        vectors: np.ndarray | Sequence[bytes],
        limit: int,
        where: Mapping[str, str | int] | None = None,
        where_not: Mapping[str, str | int] | None = None,
        after: int = 0,
    ) -> list[list[Hit]]:
        """The nearest ids of each vector; ``after``: the timestamp of a write the results
        must reflect (0: this process's own writes)."""
        params = {"metric_type": index.metric, "params": _search_params(index, limit)}
        what = _Search(
            name,
            index.kind,
            limit,
            filter_expression(where or {}, where_not or {}),
            json.dumps(params, sort_keys=True),
            after,
        )
        if self._searches is not None and len(vectors) == 1:
            found = self._searches.submit(what, [vectors[0]])
        else:
            found = self._search(what, list(vectors))
        return [[Hit(i, index.similarity(distance)) for i, distance in hits] for hits in found]

    def _search(self, what: _Search, vectors: list[Any]) -> list[list[tuple[int, float]]]:
        """(id, distance) of the hits of each vector, nearest first."""
        results = self.client.search(
            what.name,
            data=_as_search_data(vectors, what.kind),
            limit=what.limit,
            filter=what.expression,
            output_fields=["id"],
            search_params=json.loads(what.params),
            **_consistency(what.after),
        )
        return [[(int(hit["id"]), float(hit["distance"])) for hit in hits] for hits in results]

    def vectors(self, name: str, ids: Sequence[int], after: int = 0) -> dict[int, Any]:
        """Stored vectors by id, read like searches (Strong would wait ~200 ms on a server)."""
        rows = self.client.get(name, ids=list(ids), output_fields=["vector"], **_consistency(after))
        return {int(row["id"]): row["vector"] for row in rows}

    def all_ids(self, name: str) -> set[int]:
        """Every id in a collection; for tests and consistency audits, not for requests.

        Content ids are spread evenly over 63 bits, so the id range is cut into slices
        small enough for one query each (Milvus caps a query window at 16,384 rows).
        """
        slices = max(1, -(-self.count(name) // 4000))
        step = -(-(1 << 63) // slices)
        found: set[int] = set()
        for start in range(0, 1 << 63, step):
            end = min(start + step, 1 << 63) - 1
            rows = self.client.query(
                name,
                filter=f"id >= {start} and id <= {end}",
                output_fields=["id"],
                limit=16_384,
                consistency_level="Strong",
            )
            found.update(int(row["id"]) for row in rows)
        negative = self.client.query(
            name, filter="id < 0", output_fields=["id"], limit=16_384, consistency_level="Strong"
        )
        return found | {int(row["id"]) for row in negative}

    def count(self, name: str) -> int:
        """Entities in Milvus, duplicates included (a duplicate primary key counts twice)."""
        rows = self.client.query(
            name, filter="", output_fields=["count(*)"], consistency_level="Strong"
        )
        return int(rows[0]["count(*)"])

    def delete(self, name: str, ids: Sequence[int]) -> int:
        """Delete ids; return Milvus's timestamp of the delete (as ``insert`` does)."""
        latest = 0
        for start in range(0, len(ids), DELETE_BATCH):
            with _orm_api():
                expression = f"id in {[int(i) for i in ids[start : start + DELETE_BATCH]]}"
                result = self._orm_collection(name).delete(expression, timeout=ORM_TIMEOUT_S)
            latest = max(latest, int(result.timestamp or 0))
        return latest

    def drop(self, name: str) -> None:
        self._orm_collections.pop(name, None)
        self.client.drop_collection(name)


def _consistency(after: int) -> dict[str, Any]:
    """How a read waits for writes: for the given write (from any process), or for this
    process's own."""
    if after:
        return {"consistency_level": "Customized", "guarantee_timestamp": after}
    return {"consistency_level": SEARCH_CONSISTENCY}


def _search_params(index: VectorIndex, limit: int) -> dict[str, Any]:
    params = dict(index.search_params)
    if "ef" in params:  # HNSW refuses an ef smaller than the number of results asked for
        params["ef"] = max(int(params["ef"]), limit)
    return params


@contextmanager
def _orm_api() -> Iterator[None]:
    """The ORM is used on purpose where MilvusClient falls short; don't warn about it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="pymilvus")
        warnings.filterwarnings("ignore", message=".*ORM-style PyMilvus API.*")
        yield


def filter_expression(
    where: Mapping[str, str | int], where_not: Mapping[str, str | int] | None = None
) -> str:
    """Equality (``where``) and inequality (``where_not``) filters joined with ``and``;
    values are encoded, never pasted in."""
    parts = [f"{field_name} == {_literal(value)}" for field_name, value in where.items()]
    parts += [f"{name} != {_literal(value)}" for name, value in (where_not or {}).items()]
    return " and ".join(parts)


def _literal(value: str | int) -> str:
    return str(int(value)) if isinstance(value, int) else _quote(value)


# What both Milvus Lite's and Milvus's filter parsers read as escapes; anything else (other
# control characters included) stands for itself inside the quotes.
_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _quote(text: str) -> str:
    """A Milvus string literal of ``text``, whatever characters it holds."""
    return f'"{text.translate(_ESCAPES)}"'


def _as_search_data(vectors: np.ndarray | Sequence[bytes], kind: VectorKind) -> list[Any]:
    if kind == "binary":
        return [bytes(v) for v in vectors]
    return [np.asarray(v, dtype=np.float32).tolist() for v in vectors]
