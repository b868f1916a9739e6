"""The registry of collections: which exist, in what state, created with which options.

One row per collection of every app (``search_collections``), owned by this class as the
jobs table is owned by ``JobStore``. A collection is ``creating`` until both stores hold it,
``ready`` while it serves, and ``dropping`` between its Milvus drop and its SQL drop; start-up
recovery finishes whatever is not ``ready``.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, Engine, delete, insert, or_, select, update

from common.record_store import utcnow
from common.tables import collections_table as table

State = Literal["creating", "ready", "dropping"]


@dataclass(frozen=True)
class Registered:
    name: str
    physical: str
    state: State
    options: dict[str, Any]
    written_ts: int = 0  # Milvus's timestamp of its latest write (0: none recorded)


class Registry:
    """The collections of one app namespace, as the record database lists them."""

    def __init__(self, engine: Engine, namespace: str) -> None:
        self.engine = engine
        self.namespace = namespace

    def all(self) -> list[Registered]:
        """Every collection of the namespace, in every state, by name."""
        query = (
            select(table.c.name, table.c.physical, table.c.state, table.c.options)
            .where(table.c.namespace == self.namespace)
            .order_by(table.c.name)
        )
        with self.engine.connect() as connection:
            return [
                Registered(name, physical, state, dict(options or {}))
                for name, physical, state, options in connection.execute(query)
            ]

    def ready(self) -> list[Registered]:
        return [row for row in self.all() if row.state == "ready"]

    def find(self, name: str) -> Registered | None:
        """The collection called ``name`` if it is ready."""
        query = select(table.c.physical, table.c.state, table.c.options, table.c.written_ts).where(
            table.c.namespace == self.namespace, table.c.name == name
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None or row.state != "ready":
            return None
        options = dict(row.options or {})
        return Registered(name, row.physical, row.state, options, int(row.written_ts or 0))

    def begin_create(self, name: str, physical: str, options: Mapping[str, Any]) -> None:
        """Register a collection as ``creating`` (replacing any leftover row of the same name)."""
        row = {
            "physical": physical,
            "namespace": self.namespace,
            "name": name,
            "state": "creating",
            "options": dict(options) or None,
            "created_at": utcnow(),
        }
        with self.engine.begin() as connection:
            connection.execute(delete(table).where(table.c.physical == physical))
            connection.execute(insert(table).values(row))

    def set_state(self, physical: str, state: State) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(table).where(table.c.physical == physical).values(state=state)
            )

    def record_write(self, physical: str, written_ts: int, connection: Connection) -> None:
        """Keep Milvus's timestamp of a write, in the transaction that makes it visible."""
        connection.execute(
            update(table)
            .where(
                table.c.physical == physical,
                or_(table.c.written_ts.is_(None), table.c.written_ts < written_ts),
            )
            .values(written_ts=written_ts)
        )

    def forget(self, physical: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(delete(table).where(table.c.physical == physical))
