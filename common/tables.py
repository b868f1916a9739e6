"""The layer's own bookkeeping tables, shared by every app in the record database."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects import mysql

metadata = MetaData()

# MySQL's DATETIME drops fractions of a second unless asked to keep them: without them, rows
# made in the same second (jobs, items of one batch) would come back in no fixed order.
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

collections_table = Table(
    "search_collections",
    metadata,
    Column("physical", String(100), primary_key=True),
    Column("namespace", String(40), nullable=False, index=True),
    Column("name", String(40), nullable=False),
    # "ready", or "dropping" between the Milvus drop and the SQL drop.
    Column("state", String(10), nullable=False),
    # What the app let the creator choose (e.g. fingerprint size); its spec follows from it.
    Column("options", JSON, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    # Milvus's timestamp of the collection's latest write, whichever process made it: a
    # search waits until Milvus shows that write (read-after-write across processes).
    Column("written_ts", BigInteger, nullable=True),
    mysql_charset="utf8mb4",
)

jobs_table = Table(
    "search_jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("namespace", String(40), nullable=False, index=True),
    Column("collection", String(40), nullable=False),
    Column("source", String(300), nullable=False),
    Column("status", String(12), nullable=False, index=True),
    Column("total", Integer, nullable=True),
    Column("done", Integer, nullable=False, default=0),
    Column("added", Integer, nullable=False, default=0),
    Column("duplicates", Integer, nullable=False, default=0),
    Column("failed", Integer, nullable=False, default=0),
    Column("error", Text, nullable=True),
    Column("timings", JSON, nullable=False),
    # What an app measures its progress in besides items (e.g. seconds of video).
    Column("progress", JSON, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("started_at", Timestamp, nullable=True),
    Column("finished_at", Timestamp, nullable=True),
    # What to load (a path, whether it is an upload, the load's options): any worker
    # process can run the job from this row alone.
    Column("request", JSON, nullable=True),
    # The worker process running the job (its lease in ``search_workers``), and how many
    # times a worker has started it (more than once after a worker died during it).
    Column("owner", String(32), nullable=True, index=True),
    Column("attempts", Integer, nullable=True),
    Column("cancel_requested", Boolean, nullable=True),
    # Claims, takeovers and releases, oldest first: [{"at", "event", "worker", ...}].
    Column("history", JSON, nullable=True),
    # The queue's order: a claim reads (and locks) only the row it takes.
    Index("ix_search_jobs_queue", "namespace", "status", "created_at"),
    mysql_charset="utf8mb4",
)

# One lease per app per process: renewed by a heartbeat; a lease not renewed within
# ``SEARCH_LEASE_S`` belongs to a dead process, whose jobs and half-written items the other
# processes of the app take over (``common.leases``).
workers_table = Table(
    "search_workers",
    metadata,
    Column("owner", String(32), nullable=False),
    Column("namespace", String(40), nullable=False),
    Column("role", String(10), nullable=False),
    Column("host", String(100), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", Timestamp, nullable=False),
    Column("heartbeat_at", Timestamp, nullable=False),
    PrimaryKeyConstraint("owner", "namespace"),
    mysql_charset="utf8mb4",
)

job_errors_table = Table(
    "search_job_errors",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("job_id", String(32), nullable=False, index=True),
    Column("item", String(300), nullable=False),
    Column("reason", Text, nullable=False),
    mysql_charset="utf8mb4",
)
