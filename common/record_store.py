"""Records in MySQL (SQLite by default) through SQLAlchemy Core.

Every statement is built by SQLAlchemy with bound parameters; identifiers only ever come
from ``common.names`` checks. Each collection's table has the app's typed columns plus:

* ``id`` — the 63-bit id the layer issued, also the Milvus primary key;
* ``item_state`` — ``pending`` while its vector is being written, ``ready`` once it is
  searchable, ``deleting`` while it is being removed. Recovery uses it after a crash.
"""

import hashlib
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Index,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    event,
    func,
    inspect,
    literal,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.types import TypeEngine

import common.tables as tables
from common.errors import BackendUnavailable
from common.names import check_name

log = logging.getLogger(__name__)

PENDING, READY, DELETING = "pending", "ready", "deleting"
RESERVED_COLUMNS = {"id", "item_state", "created_at"}
# Keep IN (...) lists well below every driver's parameter limit.
CHUNK = 500
# How long a write waits for another process's write to the same collection.
LOCK_TIMEOUT_S = 300


@dataclass(frozen=True)
class RecordField:
    """One typed column an app declares for its records."""

    name: str
    type: TypeEngine[Any]
    nullable: bool = False
    index: bool = False  # an SQL index, for records looked up by this field

    def column(self) -> Column[Any]:
        if self.name in RESERVED_COLUMNS:
            raise ValueError(f"record field name {self.name!r} is reserved")
        check_name(self.name, what="field name")
        return Column(self.name, self.type, nullable=self.nullable)

    def index_of(self, physical: str) -> Index | None:
        """Its index on a collection's table, named within MySQL's 64 characters."""
        if not self.index:
            return None
        digest = hashlib.blake2b(f"{physical}.{self.name}".encode(), digest_size=8).hexdigest()
        return Index(f"ix_{digest}_{self.name[:30]}", self.name)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def chunks(ids: Sequence[int], size: int = CHUNK) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def make_engine(url: str) -> Engine:
    """An engine for SQLite (WAL, usable from worker threads) or MySQL (pre-ping, UTF-8)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    if parsed.get_backend_name() == "mysql" and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return create_engine(parsed, pool_pre_ping=True, pool_recycle=3600)


class RecordStore:
    """Typed per-collection tables plus the layer's own bookkeeping tables."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self._tables: dict[str, Table] = {}
        self._local_locks: dict[str, threading.RLock] = {}
        self._local_locks_lock = threading.Lock()
        self._held = threading.local()  # the named locks this thread holds

    @property
    def is_sqlite(self) -> bool:
        """SQLite serves one process (the layer enforces it); MySQL any number."""
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def lock(self, name: str, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
        """Hold the lock called ``name`` in every process using this database.

        On MySQL a named lock (``GET_LOCK``), which the server also releases when the
        holder's connection dies, so a killed process never leaves a collection locked. The
        threads of this process queue on a local lock first and so do not each hold a
        connection while they wait; on SQLite (one process) the local lock is the lock. A
        thread holding the lock may take it again (a write made of several writes).
        """
        with self._local_locks_lock:
            local = self._local_locks.setdefault(name, threading.RLock())
        if not local.acquire(timeout=timeout):
            raise BackendUnavailable(f"{name} stayed busy for {timeout:.0f} s; try again")
        held = self._held.__dict__.setdefault("names", set())
        try:
            if self.is_sqlite or name in held:
                yield
                return
            held.add(name)
            try:
                with self._named_lock(name, timeout):
                    yield
            finally:
                held.discard(name)
        finally:
            local.release()

    @contextmanager
    def _named_lock(self, name: str, timeout: float) -> Iterator[None]:
        key = f"search:{name}"
        if len(key) > 64:  # MySQL's longest lock name
            key = "search:" + hashlib.blake2b(name.encode(), digest_size=20).hexdigest()
        with self.engine.connect() as connection:
            got = connection.scalar(
                text("SELECT GET_LOCK(:key, :timeout)"), {"key": key, "timeout": timeout}
            )
            if got != 1:
                raise BackendUnavailable(
                    f"{name} stayed busy for {timeout:.0f} s (another process is writing to "
                    "it); try again"
                )
            try:
                yield
            finally:
                try:
                    connection.scalar(text("SELECT RELEASE_LOCK(:key)"), {"key": key})
                except Exception:  # the connection is gone, and the lock with it
                    log.warning("releasing lock %s failed", key)

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except (OperationalError, InterfaceError) as error:
            raise BackendUnavailable(f"the SQL database is unavailable: {error.orig}") from error

    def create_system_tables(self) -> None:
        with self.lock("system tables"):  # processes starting together would race
            tables.metadata.create_all(self.engine)
            self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        """Bring system tables made by an earlier version up to date (new nullable columns,
        new indexes)."""
        inspector = inspect(self.engine)
        for table in tables.metadata.sorted_tables:
            present = {column["name"] for column in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present and column.nullable:
                    kind = column.type.compile(dialect=self.engine.dialect)
                    with self.engine.begin() as connection:
                        connection.execute(
                            text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}")
                        )
            indexed = {index["name"] for index in inspector.get_indexes(table.name)}
            for index in table.indexes:
                if index.name not in indexed:
                    index.create(self.engine, checkfirst=True)

    # --- per-collection tables -------------------------------------------------------

    def table(self, physical: str, fields: Sequence[RecordField]) -> Table:
        """The SQLAlchemy table of a collection (declared once per process)."""
        if physical not in self._tables:
            self._tables[physical] = Table(
                physical,
                MetaData(),
                Column("id", BigInteger, primary_key=True, autoincrement=False),
                Column("item_state", String(8), nullable=False, index=True),
                Column("created_at", tables.Timestamp, nullable=False),
                *(f.column() for f in fields),
                *(index for f in fields if (index := f.index_of(physical)) is not None),
                mysql_charset="utf8mb4",
            )
        return self._tables[physical]

    def table_exists(self, physical: str) -> bool:
        return inspect(self.engine).has_table(physical)

    def create_table(self, table: Table) -> None:
        table.create(self.engine, checkfirst=True)

    def drop_table(self, table: Table) -> None:
        table.drop(self.engine, checkfirst=True)
        self._tables.pop(table.name, None)

    def existing_ids(self, table: Table, ids: Sequence[int]) -> set[int]:
        found: set[int] = set()
        with self.engine.connect() as connection:
            for part in chunks(ids):
                found.update(connection.scalars(select(table.c.id).where(table.c.id.in_(part))))
        return found

    def states(self, table: Table, ids: Sequence[int]) -> dict[int, str]:
        found: dict[int, str] = {}
        with self.engine.connect() as connection:
            for part in chunks(ids):
                query = select(table.c.id, table.c.item_state).where(table.c.id.in_(part))
                found.update({int(i): str(state) for i, state in connection.execute(query)})
        return found

    def insert_pending(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        now = utcnow()
        with self.engine.begin() as connection:
            connection.execute(
                table.insert(), [{**row, "item_state": PENDING, "created_at": now} for row in rows]
            )

    @contextmanager
    def transaction(self, connection: Connection | None = None) -> Iterator[Connection]:
        """A new transaction, committed when the block ends; or, given one, that one."""
        if connection is not None:
            yield connection
            return
        with self.engine.begin() as begun:
            yield begun

    def set_state(
        self, table: Table, ids: Sequence[int], state: str, connection: Connection | None = None
    ) -> None:
        with self.transaction(connection) as active:
            for part in chunks(ids):
                active.execute(update(table).where(table.c.id.in_(part)).values(item_state=state))

    def ids_in_state(self, table: Table, state: str) -> list[int]:
        with self.engine.connect() as connection:
            return list(connection.scalars(select(table.c.id).where(table.c.item_state == state)))

    def fetch(self, table: Table, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Ready records by id, as dicts without the bookkeeping columns."""
        records: dict[int, dict[str, Any]] = {}
        with self.engine.connect() as connection:
            for part in chunks(ids):
                # The state is checked here, not in SQL: given ``id IN (5 or more ids) AND
                # item_state = 'ready'``, SQLite (which keeps no statistics) reads the whole
                # item_state index, every ready row, instead of looking the ids up.
                query = select(table).where(table.c.id.in_(part))
                for row in connection.execute(query).mappings():
                    if row["item_state"] == READY:
                        record = {k: v for k, v in row.items() if k != "item_state"}
                        records[int(row["id"])] = record
        return records

    def page(self, table: Table, offset: int, limit: int) -> list[dict[str, Any]]:
        query = (
            select(table)
            .where(table.c.item_state == READY)
            .order_by(table.c.created_at, table.c.id)
            .offset(offset)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [
                {k: v for k, v in row.items() if k != "item_state"}
                for row in connection.execute(query).mappings()
            ]

    def select(
        self,
        table: Table,
        equals: Mapping[str, Any],
        *,
        order_by: Sequence[str] = ("id",),
        offset: int = 0,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Ready records whose columns equal the given values, in the given order."""
        query = select(table).where(
            table.c.item_state == READY, *(table.c[k] == v for k, v in equals.items())
        )
        query = query.order_by(*(table.c[name] for name in order_by)).offset(offset).limit(limit)
        with self.engine.connect() as connection:
            return [
                {k: v for k, v in row.items() if k != "item_state"}
                for row in connection.execute(query).mappings()
            ]

    def scan(self, table: Table, columns: Sequence[str]) -> list[tuple[Any, ...]]:
        query = select(table.c.id, *(table.c[name] for name in columns)).where(
            table.c.item_state == READY
        )
        with self.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(query)]

    def count(self, table: Table) -> int:
        query = select(func.count()).select_from(table).where(table.c.item_state == READY)
        with self.engine.connect() as connection:
            return int(connection.scalar(query) or 0)

    def counts(self, tables: Sequence[Table]) -> dict[str, int]:
        """Ready rows of several tables in one statement (``UNION ALL``), by table name."""
        if not tables:
            return {}
        parts = [
            select(literal(t.name).label("name"), func.count().label("n"))
            .select_from(t)
            .where(t.c.item_state == READY)
            for t in tables
        ]
        with self.engine.connect() as connection:
            return {str(name): int(n) for name, n in connection.execute(union_all(*parts))}

    def all_ids(self, table: Table) -> set[int]:
        with self.engine.connect() as connection:
            return set(connection.scalars(select(table.c.id)))

    def delete_rows(
        self, table: Table, ids: Sequence[int], connection: Connection | None = None
    ) -> None:
        with self.transaction(connection) as active:
            for part in chunks(ids):
                active.execute(delete(table).where(table.c.id.in_(part)))
