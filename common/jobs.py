"""Load jobs: accepted at once (202 + id), run off the event loop, persisted in SQL.

A job's state lives in the record database, so ``GET /jobs/{id}`` and the event stream work
from any process and survive a restart. A job that a restart interrupted is marked failed
(loads are idempotent, so running it again is safe). One worker thread per app runs jobs
in order; the load itself pipelines encoding with storing (see ``common.loading``).
"""

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Engine, func, insert, select, update

from common.errors import Conflict, NotFound, TooManyJobs
from common.failures import job_failure
from common.record_store import utcnow
from common.tables import job_errors_table, jobs_table

log = logging.getLogger(__name__)

# Keep at most this many item errors per job; the ``failed`` counter stays exact.
MAX_STORED_ERRORS = 10_000
FINISHED = {"succeeded", "failed", "cancelled"}


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class ItemError(BaseModel):
    item: str = Field(description="Which item failed, e.g. `line 12` or a file name.")
    reason: str


JOB_EXAMPLE: dict[str, Any] = {
    "id": "f45e2a2005054d478a134714dbcb461b",
    "collection": "office",
    "source": "office.csv",
    "status": "succeeded",
    "total": 5,
    "done": 5,
    "added": 4,
    "duplicates": 0,
    "failed": 1,
    "error": None,
    "errors": [{"item": "line 6", "reason": "question: String should have at least 1 character"}],
    "errors_truncated": False,
    "timings": {"parse": 0.0002, "encode": 0.0205, "store": 0.006},
    "created_at": "2026-11-23T15:45:56.668529Z",
    "started_at": "2026-11-23T15:45:56.669854Z",
    "finished_at": "2026-11-23T15:45:56.704872Z",
}


class Job(BaseModel):
    """A load job as the API reports it."""

    model_config = ConfigDict(json_schema_extra={"examples": [JOB_EXAMPLE]})

    id: str
    collection: str
    source: str = Field(description="What is being loaded (the upload's name, a path, `sample`).")
    status: JobStatus
    total: int | None = Field(description="Items found so far in the source; null until known.")
    done: int = Field(description="Items processed: added + duplicates + failed.")
    added: int
    duplicates: int = Field(description="Items already stored (same content key); skipped.")
    failed: int
    error: str | None = Field(description="Why the whole job failed, if it did.")
    errors: list[ItemError] = Field(default_factory=list, description="Per-item errors.")
    errors_truncated: bool = False
    timings: dict[str, float] = Field(description="Seconds spent per stage.")
    progress: dict[str, float] = Field(
        default_factory=dict,
        description="Progress in the app's own units besides items, e.g. `seconds` of video "
        "read so far of the `seconds_total` of the videos found so far (empty for apps that "
        "count items only).",
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @field_validator("created_at", "started_at", "finished_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """Stored as naive UTC (portable across SQLite and MySQL); reported with the zone."""
        return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class JobCancelled(Exception):
    """Raised inside a job's work when cancellation was requested."""


class JobStore:
    """Reads and writes the jobs of one app namespace."""

    def __init__(self, engine: Engine, namespace: str) -> None:
        self.engine = engine
        self.namespace = namespace

    def create(self, collection: str, source: str) -> str:
        job_id = uuid.uuid4().hex
        with self.engine.begin() as connection:
            connection.execute(
                insert(jobs_table).values(
                    id=job_id,
                    namespace=self.namespace,
                    collection=collection,
                    source=source[:300],
                    status=JobStatus.queued,
                    total=None,
                    done=0,
                    added=0,
                    duplicates=0,
                    failed=0,
                    timings={},
                    created_at=utcnow(),
                )
            )
        return job_id

    def get(self, job_id: str, *, error_limit: int = 1000) -> Job:
        query = select(jobs_table).where(
            jobs_table.c.id == job_id, jobs_table.c.namespace == self.namespace
        )
        errors_query = (
            select(job_errors_table.c.item, job_errors_table.c.reason)
            .where(job_errors_table.c.job_id == job_id)
            .order_by(job_errors_table.c.seq)
            .limit(error_limit + 1)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).mappings().first()
            if row is None:
                raise NotFound(f"no job {job_id!r}")
            errors = [ItemError(item=i, reason=r) for i, r in connection.execute(errors_query)]
        job = _job(row)
        job.errors = errors[:error_limit]
        job.errors_truncated = len(errors) > error_limit or job.failed > len(job.errors)
        return job

    def recent(self, limit: int = 50, collection: str | None = None) -> list[Job]:
        query = select(jobs_table).where(jobs_table.c.namespace == self.namespace)
        if collection is not None:
            query = query.where(jobs_table.c.collection == collection)
        query = query.order_by(jobs_table.c.created_at.desc()).limit(limit)
        with self.engine.connect() as connection:
            return [_job(row) for row in connection.execute(query).mappings()]

    def unfinished(self, collection: str) -> list[str]:
        """The ids of the jobs queued or running for ``collection``, oldest first."""
        query = (
            select(jobs_table.c.id)
            .where(
                jobs_table.c.namespace == self.namespace,
                jobs_table.c.collection == collection,
                jobs_table.c.status.in_([JobStatus.queued, JobStatus.running]),
            )
            .order_by(jobs_table.c.created_at)
        )
        with self.engine.connect() as connection:
            return list(connection.scalars(query))

    def update(self, job_id: str, **values: Any) -> None:
        with self.engine.begin() as connection:
            connection.execute(update(jobs_table).where(jobs_table.c.id == job_id).values(**values))

    def add_errors(self, job_id: str, errors: list[tuple[str, str]]) -> None:
        if not errors:
            return
        with self.engine.begin() as connection:
            stored = (
                connection.scalar(
                    select(func.count())
                    .select_from(job_errors_table)
                    .where(job_errors_table.c.job_id == job_id)
                )
                or 0
            )
            room = max(0, MAX_STORED_ERRORS - stored)
            if room:
                connection.execute(
                    insert(job_errors_table),
                    [
                        {"job_id": job_id, "item": item[:300], "reason": reason}
                        for item, reason in errors[:room]
                    ],
                )

    def fail_interrupted(self) -> int:
        """Mark jobs left queued or running by a previous process as failed."""
        with self.engine.begin() as connection:
            result = connection.execute(
                update(jobs_table)
                .where(
                    jobs_table.c.namespace == self.namespace,
                    jobs_table.c.status.in_([JobStatus.queued, JobStatus.running]),
                )
                .values(
                    status=JobStatus.failed,
                    finished_at=utcnow(),
                    error="interrupted by a restart; run the load again (it skips what "
                    "was already stored)",
                )
            )
            return result.rowcount or 0


def _job(row: Any) -> Job:
    fields = {k: row[k] for k in Job.model_fields if k in row and k not in {"timings", "progress"}}
    return Job(**fields, errors=[], timings=row["timings"] or {}, progress=row["progress"] or {})


class JobContext:
    """What a job's work sees: progress counters, item errors, cancellation, stage timers."""

    FLUSH_SECONDS = 0.25

    def __init__(self, store: JobStore, job_id: str, cancel: threading.Event) -> None:
        self.store = store
        self.job_id = job_id
        self._cancel = cancel
        self.counts = {"done": 0, "added": 0, "duplicates": 0, "failed": 0}
        self.total: int | None = None
        self.timings: dict[str, float] = {}
        self.progress: dict[str, float] = {}
        self._errors: list[tuple[str, str]] = []
        self._flushed_at = 0.0
        self._lock = threading.Lock()

    def check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise JobCancelled

    def set_total(self, total: int) -> None:
        self.total = total
        self.flush()

    def count(self, *, added: int = 0, duplicates: int = 0, failed: int = 0) -> None:
        with self._lock:
            self.counts["added"] += added
            self.counts["duplicates"] += duplicates
            self.counts["failed"] += failed
            self.counts["done"] += added + duplicates + failed
        if time.monotonic() - self._flushed_at >= self.FLUSH_SECONDS:
            self.flush()

    def advance(self, **amounts: float) -> None:
        """Add to the app's own progress measures (``seconds=2.0``)."""
        with self._lock:
            for key, amount in amounts.items():
                self.progress[key] = self.progress.get(key, 0.0) + amount
        if time.monotonic() - self._flushed_at >= self.FLUSH_SECONDS:
            self.flush()

    def error(self, item: str, reason: str) -> None:
        with self._lock:
            self._errors.append((item, reason))
        self.count(failed=1)

    def spent(self, stage: str, seconds: float) -> None:
        """Add time measured elsewhere (on another thread) to a stage."""
        with self._lock:
            self.timings[stage] = self.timings.get(stage, 0.0) + seconds

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start

    def flush(self) -> None:
        with self._lock:
            errors, self._errors = self._errors, []
            values = {
                **self.counts,
                "total": self.total,
                "timings": {k: round(v, 4) for k, v in self.timings.items()},
                "progress": {k: round(v, 3) for k, v in self.progress.items()} or None,
            }
        self.store.add_errors(self.job_id, errors)
        self.store.update(self.job_id, **values)
        self._flushed_at = time.monotonic()


Work = Callable[[JobContext], None]


class JobRunner:
    """Runs one app's jobs, one at a time, on a worker thread.

    ``max_queued``: how many jobs may wait for the worker; beyond, a new one is refused (429)
    rather than queued without bound.
    """

    END_RETRY_SECONDS = 120

    def __init__(self, store: JobStore, max_queued: int = 20) -> None:
        self.store = store
        self.max_queued = max_queued
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"jobs-{store.namespace}"
        )
        self._cancel: dict[str, threading.Event] = {}
        self._waiting: set[str] = set()
        self._lock = threading.Lock()

    def check_room(self) -> None:
        """Refuse (429) if the queue is full; a load checks before it stores an upload."""
        if len(self._waiting) >= self.max_queued:
            raise TooManyJobs(
                f"{len(self._waiting)} loads are already waiting (the most this server "
                "queues); try again when some have finished"
            )

    def submit(
        self, collection: str, source: str, work: Work, cleanup: Callable[[], None] | None = None
    ) -> Job:
        with self._lock:
            self.check_room()
            job_id = self.store.create(collection, source)
            self._waiting.add(job_id)
        accepted = self.store.get(job_id)  # as accepted: queued, whenever the worker starts it
        self._cancel[job_id] = threading.Event()
        self._executor.submit(self._run, job_id, work, cleanup)
        return accepted

    def cancel(self, job_id: str) -> Job:
        job = self.store.get(job_id)
        if job.finished:
            raise Conflict(f"job {job_id} has already {job.status}")
        event = self._cancel.get(job_id)
        if event is None:
            raise Conflict(f"job {job_id} is not run by this process")
        event.set()
        return self.store.get(job_id)

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until a job of this process ends (for scripts and the demo loader)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (job := self.store.get(job_id)).finished:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.status} after {timeout} s")
            time.sleep(0.05)
        return job

    def shutdown(self) -> None:
        """Cancel every job: a running one stops between batches, queued ones end at once
        (each still records "cancelled" and removes its upload)."""
        for event in list(self._cancel.values()):
            event.set()
        self._executor.shutdown(wait=True)

    def _run(self, job_id: str, work: Work, cleanup: Callable[[], None] | None) -> None:
        self._waiting.discard(job_id)
        cancel = self._cancel[job_id]
        context = JobContext(self.store, job_id, cancel)
        try:
            if cancel.is_set():
                raise JobCancelled
            self.store.update(job_id, status=JobStatus.running, started_at=utcnow())
            work(context)
            outcome: dict[str, Any] = {"status": JobStatus.succeeded}
        except JobCancelled:
            outcome = {"status": JobStatus.cancelled}
        except Exception as error:
            log.exception("job %s failed", job_id)  # the details, for whoever runs the server
            outcome = {"status": JobStatus.failed, "error": job_failure(error)}
        finally:
            if cleanup is not None:
                cleanup()
        try:
            self._record_end(job_id, context, outcome)
        finally:
            self._cancel.pop(job_id, None)  # only now: a cancel before this still finds it
        log.info("job %s %s: %s", job_id, outcome["status"], context.counts)

    def _record_end(self, job_id: str, context: JobContext, outcome: dict[str, Any]) -> None:
        """Write how the job ended, retrying while the SQL database is away (the outage may
        be what ended it); if it does not come back, the next start marks the job failed."""
        deadline = time.monotonic() + self.END_RETRY_SECONDS
        while True:
            try:
                context.flush()
                self.store.update(job_id, finished_at=utcnow(), **outcome)
                return
            except Exception:
                if time.monotonic() > deadline:
                    log.exception("job %s: cannot record that it %s", job_id, outcome["status"])
                    return
                log.warning("job %s: recording its end failed; retrying", job_id)
                time.sleep(1)
