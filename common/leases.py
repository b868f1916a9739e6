"""Which processes of an app are alive: a lease per process, renewed by a heartbeat.

Every process running an app (serving HTTP, running jobs, or both) holds one row in
``search_workers`` and renews it every ``SEARCH_LEASE_S / 5`` seconds. A process that dies
stops renewing; once its lease is ``SEARCH_LEASE_S`` old, the next heartbeat of any other
process of the app removes it and takes over what it left: its running jobs go back to the
queue (``JobStore.requeue_orphans``) and the collections are swept of the items it was
writing (``Collections.recover``). Expiry is judged by the database's clock, so hosts whose
clocks differ still agree.

On SQLite there is one process (``claim_sqlite``), so a starting process knows every lease
it finds is a dead one's and takes over at once.
"""

import fcntl
import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.engine import make_url

from common.tables import workers_table as table

log = logging.getLogger(__name__)

Role = Literal["api", "worker", "all"]


def database_now(connection: Connection) -> datetime:
    """The database's clock (naive, as the lease columns store it)."""
    now = connection.scalar(select(func.now()))
    if isinstance(now, str):  # SQLite's CURRENT_TIMESTAMP, read without a column type
        now = datetime.fromisoformat(now)
    assert isinstance(now, datetime)
    return now.replace(tzinfo=None)


class Lease:
    """This process's lease for one app (namespace), and the view of the others' leases."""

    def __init__(self, engine: Engine, namespace: str, role: Role, seconds: float) -> None:
        self.engine = engine
        self.namespace = namespace
        self.role = role
        self.seconds = seconds
        self.owner = uuid.uuid4().hex
        self.label = f"{socket.gethostname()[:60]}:{os.getpid()}"

    def join(self) -> None:
        """Take the lease (again, if it was taken over while this process was stalled)."""
        with self.engine.begin() as connection:
            now = database_now(connection)
            connection.execute(
                insert(table).values(
                    owner=self.owner,
                    namespace=self.namespace,
                    role=self.role,
                    host=socket.gethostname()[:100],
                    pid=os.getpid(),
                    started_at=now,
                    heartbeat_at=now,
                )
            )

    def renew(self) -> bool:
        """Renew the lease; False if another process had already taken it over (this one
        was presumed dead: its jobs are someone else's now), in which case it joins anew."""
        with self.engine.begin() as connection:
            renewed = connection.execute(
                update(table)
                .where(table.c.owner == self.owner, table.c.namespace == self.namespace)
                .values(heartbeat_at=database_now(connection))
            ).rowcount
        if renewed:
            return True
        log.error(
            "%s: this process's lease was taken over (it did not renew it for %s s); "
            "its running job is abandoned to the process that took over",
            self.namespace,
            self.seconds,
        )
        self.join()
        return False

    def leave(self) -> None:
        """Give the lease up (a clean shutdown)."""
        with self.engine.begin() as connection:
            connection.execute(
                delete(table).where(
                    table.c.owner == self.owner, table.c.namespace == self.namespace
                )
            )

    def expire(self, *, all_others: bool = False) -> list[str]:
        """Remove the expired leases of the app's other processes (or all of them:
        ``all_others``, for a process that knows it is alone); return their owners."""
        with self.engine.begin() as connection:
            cutoff = database_now(connection) - timedelta(seconds=self.seconds)
            mine = (table.c.namespace == self.namespace, table.c.owner != self.owner)
            query = select(table.c.owner).where(*mine)
            if not all_others:
                query = query.where(table.c.heartbeat_at < cutoff)
            dead = list(connection.scalars(query))
            expired = []
            for owner in dead:
                condition = [table.c.owner == owner, table.c.namespace == self.namespace]
                if not all_others:
                    condition.append(table.c.heartbeat_at < cutoff)
                if connection.execute(delete(table).where(*condition)).rowcount:
                    expired.append(owner)
        for owner in expired:
            log.warning("%s: the lease of process %s expired; taking over", self.namespace, owner)
        return expired

    def live(self) -> list["Holder"]:
        """The app's processes holding a lease, oldest first."""
        query = (
            select(table.c.role, table.c.host, table.c.pid, table.c.heartbeat_at)
            .where(table.c.namespace == self.namespace)
            .order_by(table.c.started_at)
        )
        with self.engine.connect() as connection:
            now = database_now(connection)
            return [
                Holder(row.role, row.host, row.pid, (now - row.heartbeat_at).total_seconds())
                for row in connection.execute(query)
            ]


@dataclass(frozen=True)
class Holder:
    """A process holding a lease."""

    role: Role
    host: str
    pid: int
    seconds_since_heartbeat: float


# SQLite databases this process holds (path -> open lock file), and how many holders each has.
_sqlite_locks: dict[str, tuple[int, int]] = {}
_sqlite_locks_lock = threading.Lock()


class SQLiteInUse(RuntimeError):
    """Another process serves the same SQLite database."""


def claim_sqlite(url: str) -> bool:
    """Make this process the only one using a SQLite database (a lock on ``<db>.lock``,
    released by the kernel if the process dies). True if the database is SQLite.

    Several apps of one process (the launcher) may claim the same database.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return False
    if not parsed.database or parsed.database == ":memory:":
        return True
    path = str(Path(parsed.database).expanduser().resolve()) + ".lock"
    with _sqlite_locks_lock:
        if path in _sqlite_locks:
            handle, holders = _sqlite_locks[path]
            _sqlite_locks[path] = (handle, holders + 1)
            return True
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            raise SQLiteInUse(
                f"another process is serving the SQLite database {parsed.database}. SQLite "
                "serves one process; to run several (uvicorn --workers, replicas, "
                "separate job workers) use MySQL (SEARCH_SQL_URL): see docs/scale-out.md"
            ) from None
        _sqlite_locks[path] = (handle, 1)
        return True


def release_sqlite(url: str) -> None:
    """Undo one ``claim_sqlite`` of this process."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return
    path = str(Path(parsed.database).expanduser().resolve()) + ".lock"
    with _sqlite_locks_lock:
        if path not in _sqlite_locks:
            return
        handle, holders = _sqlite_locks[path]
        if holders > 1:
            _sqlite_locks[path] = (handle, holders - 1)
            return
        del _sqlite_locks[path]
        os.close(handle)  # closing the last descriptor releases the lock
