"""Load jobs: accepted at once (202 + id), run off the event loop, persisted in SQL.

The jobs table is the queue. A job's row says everything needed to run it (``request``),
so any process of the app that runs jobs (``SEARCH_ROLE`` ``worker`` or ``all``) can claim
it: ``SELECT ... FOR UPDATE SKIP LOCKED`` on MySQL, so two workers never take the same job
and neither waits for the other. Each worker process runs one job at a time per app, on a
thread of its own; the load itself pipelines encoding with storing (``common.loading``).

A worker holds a lease (``common.leases``). If it dies, its job goes back to the queue
once the lease expires and another worker (or the same one, restarted) runs it again from
the start: loads are idempotent by content id, so what the first run stored counts as
duplicates. A worker that stops cleanly puts its job back at once. A job whose workers died
``MAX_ATTEMPTS`` times fails instead of being retried forever.

``GET /jobs/{id}`` and the event stream read the same rows, from any process.
"""

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Engine, func, insert, or_, select, update

from common.errors import Conflict, NotFound, TooManyJobs
from common.failures import job_failure
from common.leases import Lease
from common.record_store import utcnow
from common.tables import job_errors_table, jobs_table, workers_table

log = logging.getLogger(__name__)

# Keep at most this many item errors per job; the ``failed`` counter stays exact.
MAX_STORED_ERRORS = 10_000
FINISHED = {"succeeded", "failed", "cancelled"}
# A job is started at most this many times when the workers running it die.
MAX_ATTEMPTS = 3


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class ItemError(BaseModel):
    item: str = Field(description="Which item failed, e.g. `line 12` or a file name.")
    reason: str


class JobEvent(BaseModel):
    """A step in a job's life: a worker started it, or the job went back to the queue."""

    at: datetime
    event: Literal["started", "requeued"]
    worker: str = Field(description="The worker process, as `host:pid`.")
    detail: str = ""

    @field_validator("at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value


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
    "attempts": 1,
    "history": [
        {
            "at": "2026-11-23T15:45:56.669854Z",
            "event": "started",
            "worker": "search-worker-1:812",
            "detail": "attempt 1",
        }
    ],
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
    attempts: int = Field(
        0, description="How many times a worker started it (more than 1 after a worker died)."
    )
    history: list[JobEvent] = Field(
        default_factory=list, description="Which worker ran it, and any takeover, oldest first."
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


class JobStopped(Exception):
    """Raised inside a job's work when its worker gives it up: the worker is stopping (the
    job goes back to the queue) or lost its lease (another worker has the job now)."""


@dataclass(frozen=True)
class Claimed:
    """A job a worker took from the queue: what it loads, and into which collection."""

    id: str
    collection: str
    source: str
    request: Mapping[str, Any] | None  # None for a job queued by an earlier version
    attempts: int


class JobStore:
    """Reads and writes the jobs of one app namespace: the queue of its workers."""

    def __init__(self, engine: Engine, namespace: str) -> None:
        self.engine = engine
        self.namespace = namespace

    def create(self, collection: str, source: str, request: Mapping[str, Any]) -> str:
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
                    request=dict(request),
                    attempts=0,
                    history=[],
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

    def waiting(self) -> int:
        """How many jobs of the app wait for a worker."""
        query = select(func.count()).where(
            jobs_table.c.namespace == self.namespace, jobs_table.c.status == JobStatus.queued
        )
        with self.engine.connect() as connection:
            return int(connection.scalar(query) or 0)

    def claim(self, owner: str, worker: str) -> Claimed | None:
        """Take the oldest queued job for the worker holding lease ``owner``, if any.

        ``FOR UPDATE SKIP LOCKED`` (MySQL 8, MariaDB 10.6): a job another worker is claiming
        right now is skipped rather than waited for; SQLite, with one process, ignores it.
        """
        query = (
            select(jobs_table.c.id, jobs_table.c.collection, jobs_table.c.source)
            .add_columns(jobs_table.c.request, jobs_table.c.attempts, jobs_table.c.history)
            .where(
                jobs_table.c.namespace == self.namespace, jobs_table.c.status == JobStatus.queued
            )
            .order_by(jobs_table.c.created_at)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        with self.engine.begin() as connection:
            row = connection.execute(query).first()
            if row is None:
                return None
            attempts = (row.attempts or 0) + 1
            event = _event("started", worker, f"attempt {attempts}")
            claimed = connection.execute(
                update(jobs_table)
                .where(jobs_table.c.id == row.id, jobs_table.c.status == JobStatus.queued)
                .values(
                    status=JobStatus.running,
                    owner=owner,
                    attempts=attempts,
                    started_at=func.coalesce(jobs_table.c.started_at, utcnow()),
                    history=[*(row.history or []), event],
                )
            ).rowcount
        if not claimed:
            return None
        return Claimed(row.id, row.collection, row.source, row.request, attempts)

    def release(self, job_id: str, owner: str, worker: str) -> None:
        """Put a job this worker was running back in the queue (the worker is stopping);
        the attempt does not count against ``MAX_ATTEMPTS``."""
        with self.engine.begin() as connection:
            row = connection.execute(
                select(jobs_table.c.attempts, jobs_table.c.history, jobs_table.c.done)
                .where(jobs_table.c.id == job_id, jobs_table.c.owner == owner)
                .with_for_update()
            ).first()
            if row is None:
                return
            detail = f"its worker stopped after {row.done} items; it runs again from the start"
            connection.execute(
                update(jobs_table)
                .where(jobs_table.c.id == job_id, jobs_table.c.owner == owner)
                .values(
                    status=JobStatus.queued,
                    owner=None,
                    attempts=max(0, (row.attempts or 1) - 1),
                    history=[*(row.history or []), _event("requeued", worker, detail)],
                )
            )

    def requeue_orphans(self) -> list[Claimed]:
        """Put back in the queue the running jobs whose worker holds no lease any more (it
        died); end instead those whose workers died ``MAX_ATTEMPTS`` times (failed) or that
        were cancelled meanwhile. Returns the jobs it ended, whose uploads can go."""
        live = select(workers_table.c.owner).where(workers_table.c.namespace == self.namespace)
        query = (
            select(jobs_table.c.id, jobs_table.c.collection, jobs_table.c.source)
            .add_columns(jobs_table.c.done, jobs_table.c.request, jobs_table.c.attempts)
            .add_columns(jobs_table.c.history, jobs_table.c.cancel_requested)
            .where(
                jobs_table.c.namespace == self.namespace,
                jobs_table.c.status == JobStatus.running,
                or_(jobs_table.c.owner.is_(None), jobs_table.c.owner.not_in(live)),
            )
            .with_for_update(skip_locked=True)
        )
        orphans, ended = [], []
        with self.engine.begin() as connection:
            for row in connection.execute(query).all():
                attempts = row.attempts or 1
                detail = f"its worker stopped answering after {row.done} items"
                values: dict[str, Any]
                if row.cancel_requested:
                    values = {"status": JobStatus.cancelled, "finished_at": utcnow()}
                elif attempts >= MAX_ATTEMPTS:
                    values = {
                        "status": JobStatus.failed,
                        "finished_at": utcnow(),
                        "error": f"The workers running this load stopped {attempts} times "
                        "(killed, or out of memory?); it was not started again. The server "
                        "logs may say why; items already stored stay.",
                    }
                else:
                    values = {"status": JobStatus.queued}
                    detail += "; it runs again from the start"
                event = _event("requeued", "-", detail)
                connection.execute(
                    update(jobs_table)
                    .where(jobs_table.c.id == row.id, jobs_table.c.status == JobStatus.running)
                    .values(owner=None, history=[*(row.history or []), event], **values)
                )
                orphans.append(row.id)
                if values["status"] != JobStatus.queued:
                    request = row.request
                    ended.append(Claimed(row.id, row.collection, row.source, request, attempts))
        for job_id in orphans:
            log.warning("%s: job %s lost its worker; taken over", self.namespace, job_id)
        return ended

    def request_cancel(self, job_id: str) -> Claimed | None:
        """Cancel a queued job at once (and return it, for its upload to be removed), or ask
        the worker running it to stop (None); 404 if there is no such job, 409 if it has
        finished."""
        query = select(
            jobs_table.c.collection, jobs_table.c.source, jobs_table.c.status
        ).add_columns(jobs_table.c.request, jobs_table.c.attempts)
        query = query.where(jobs_table.c.id == job_id, jobs_table.c.namespace == self.namespace)
        with self.engine.begin() as connection:
            row = connection.execute(query).first()
            if row is None:
                raise NotFound(f"no job {job_id!r}")
            if row.status in FINISHED:
                raise Conflict(f"job {job_id} has already {row.status}")
            cancelled = connection.execute(
                update(jobs_table)
                .where(jobs_table.c.id == job_id, jobs_table.c.status == JobStatus.queued)
                .values(status=JobStatus.cancelled, finished_at=utcnow())
            ).rowcount
            if cancelled:
                request, attempts = row.request, row.attempts or 0
                return Claimed(job_id, row.collection, row.source, request, attempts)
            connection.execute(
                update(jobs_table)
                .where(jobs_table.c.id == job_id, jobs_table.c.status == JobStatus.running)
                .values(cancel_requested=True)
            )
        return None

    def cancel_requested(self, job_id: str) -> bool:
        query = select(jobs_table.c.cancel_requested).where(jobs_table.c.id == job_id)
        with self.engine.connect() as connection:
            return bool(connection.scalar(query))

    def update(self, job_id: str, held_by: str | None = None, **values: Any) -> None:
        """Write a job's fields; given the lease (``held_by``) of the worker running it, only
        while that worker still has the job (else ``JobStopped``: another one took it over)."""
        query = update(jobs_table).where(jobs_table.c.id == job_id)
        if held_by is not None:
            query = query.where(jobs_table.c.owner == held_by)
        with self.engine.begin() as connection:
            if not connection.execute(query.values(**values)).rowcount and held_by is not None:
                raise JobStopped(f"job {job_id} was taken over by another worker")

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


def _event(event: str, worker: str, detail: str) -> dict[str, str]:
    at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {"at": at, "event": event, "worker": worker, "detail": detail}


def _job(row: Any) -> Job:
    skip = {"timings", "progress", "attempts", "history"}
    fields = {k: row[k] for k in Job.model_fields if k in row and k not in skip}
    return Job(
        **fields,
        errors=[],
        timings=row["timings"] or {},
        progress=row["progress"] or {},
        attempts=row["attempts"] or 0,
        history=row["history"] or [],
    )


class JobContext:
    """What a job's work sees: progress counters, item errors, cancellation, stage timers."""

    FLUSH_SECONDS = 0.25
    CANCEL_CHECK_SECONDS = 0.5

    def __init__(
        self,
        store: JobStore,
        job_id: str,
        cancel: threading.Event,
        owner: str | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.store = store
        self.job_id = job_id
        self.owner = owner
        self._cancel = cancel
        self._stop = stop or threading.Event()
        self.counts = {"done": 0, "added": 0, "duplicates": 0, "failed": 0}
        self.total: int | None = None
        self.timings: dict[str, float] = {}
        self.progress: dict[str, float] = {}
        self._errors: list[tuple[str, str]] = []
        self._flushed_at = 0.0
        self._cancel_checked_at = time.monotonic()
        self._lock = threading.Lock()

    def check_cancelled(self) -> None:
        """Between batches: stop if the job was cancelled (from any process) or its worker
        is giving it up."""
        if self._stop.is_set():
            raise JobStopped
        now = time.monotonic()
        if not self._cancel.is_set() and now - self._cancel_checked_at >= self.CANCEL_CHECK_SECONDS:
            self._cancel_checked_at = now
            if self.store.cancel_requested(self.job_id):
                self._cancel.set()
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
        self.store.update(self.job_id, self.owner, **values)
        self._flushed_at = time.monotonic()


# Runs a claimed job; raises to fail it (``JobCancelled`` when cancelled).
RunJob = Callable[[Claimed, JobContext], None]
# Removes what a job leaves once it has ended (an upload), or was cancelled while queued.
Discard = Callable[[Claimed], None]


class JobRunner:
    """One app's jobs in this process: accepts them into the queue, and (unless the process
    only serves HTTP) runs them one at a time on a worker thread; a heartbeat thread keeps
    the process's lease and takes over from dead processes.

    ``max_queued``: how many jobs may wait for a worker; beyond, a new one is refused (429)
    rather than queued without bound.
    """

    END_RETRY_SECONDS = 120
    POLL_SECONDS = 1.0  # how often an idle worker looks for jobs queued by other processes

    def __init__(self, store: JobStore, lease: Lease, max_queued: int = 20) -> None:
        self.store = store
        self.lease = lease
        self.max_queued = max_queued
        self._run: RunJob | None = None
        self._discard: Discard = lambda _job: None
        self._on_takeover: Callable[[], None] = lambda: None
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._current: tuple[str, threading.Event, threading.Event] | None = None
        self._lock = threading.Lock()
        self._sweep_wanted = threading.Event()

    def start(
        self,
        run: RunJob | None,
        discard: Discard,
        on_takeover: Callable[[], None],
        *,
        alone: bool = False,
    ) -> None:
        """Take the lease, take over from dead processes, then start the heartbeat and (given
        ``run``) the worker. ``alone``: no other process can be alive (SQLite), so every
        other lease is a dead one's."""
        self._run, self._discard, self._on_takeover = run, discard, on_takeover
        self.lease.join()
        self.lease.expire(all_others=alone)
        self._requeue_orphans()
        names = self.store.namespace
        self._threads = [
            threading.Thread(target=self._beat, name=f"lease-{names}", daemon=True),
            threading.Thread(target=self._sweep, name=f"takeover-{names}", daemon=True),
        ]
        if run is not None:
            self._threads.append(
                threading.Thread(target=self._work, name=f"jobs-{names}", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def check_room(self) -> None:
        """Refuse (429) if the queue is full; a load checks before it stores an upload."""
        waiting = self.store.waiting()
        if waiting >= self.max_queued:
            raise TooManyJobs(
                f"{waiting} loads are already waiting (the most this server queues); try "
                "again when some have finished"
            )

    def submit(self, collection: str, source: str, request: Mapping[str, Any]) -> Job:
        """Queue a job; a worker of any process of the app runs it."""
        with self._lock:
            self.check_room()
            job_id = self.store.create(collection, source, request)
        accepted = self.store.get(job_id)  # as accepted: queued, whenever a worker starts it
        self._wake.set()
        return accepted

    def cancel(self, job_id: str) -> Job:
        cancelled = self.store.request_cancel(job_id)
        if cancelled is not None:
            self._discard(cancelled)
        else:
            current = self._current
            if current is not None and current[0] == job_id:
                current[1].set()  # running here: stop at the next batch, not the next check
        return self.store.get(job_id)

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until a job ends (for scripts and the demo loader)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (job := self.store.get(job_id)).finished:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.status} after {timeout} s")
            time.sleep(0.05)
        return job

    def shutdown(self) -> None:
        """Stop: a running job stops between batches and goes back to the queue (another
        worker, or this one restarted, runs it again); queued jobs stay queued. Then give
        the lease up."""
        self._stopping.set()
        self._wake.set()
        current = self._current
        if current is not None:
            current[2].set()
        for thread in self._threads:
            thread.join()
        try:
            self.lease.leave()
        except Exception:
            log.warning("%s: could not give the lease up; it expires", self.store.namespace)

    def _beat(self) -> None:
        interval = self.lease.seconds / 5
        while not self._stopping.wait(interval):
            try:
                if not self.lease.renew():
                    current = self._current
                    if current is not None:
                        current[2].set()  # another worker has it now
                if self.lease.expire():
                    self._sweep_wanted.set()
                self._requeue_orphans()
            except Exception:
                log.warning("%s: heartbeat failed; retrying", self.store.namespace, exc_info=True)

    def _requeue_orphans(self) -> None:
        for ended in self.store.requeue_orphans():
            self._discard(ended)
        self._wake.set()

    def _sweep(self) -> None:
        """Clear what dead processes were writing when the heartbeat finds one, on a thread
        of its own: a sweep of many collections must not hold up the heartbeat (this
        process's own lease would expire meanwhile)."""
        while not self._stopping.is_set():
            if not self._sweep_wanted.wait(1.0):
                continue
            self._sweep_wanted.clear()
            try:
                self._on_takeover()
            except Exception:
                log.exception("%s: clearing a dead process's writes failed", self.lease.namespace)

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                claimed = self.store.claim(self.lease.owner, self.lease.label)
            except Exception:
                log.warning("%s: cannot read the job queue", self.store.namespace, exc_info=True)
                claimed = None
            if claimed is None:
                self._wake.wait(self.POLL_SECONDS)
                self._wake.clear()
                continue
            self._execute(claimed)

    def _execute(self, job: Claimed) -> None:
        assert self._run is not None
        cancel, stop = threading.Event(), threading.Event()
        self._current = (job.id, cancel, stop)
        if self._stopping.is_set():
            stop.set()
        context = JobContext(self.store, job.id, cancel, self.lease.owner, stop)
        outcome: dict[str, Any] | None = None
        try:
            context.check_cancelled()
            self._run(job, context)
            outcome = {"status": JobStatus.succeeded}
        except JobCancelled:
            outcome = {"status": JobStatus.cancelled}
        except JobStopped:
            pass
        except Exception as error:
            if stop.is_set():  # failed because it was being abandoned
                outcome = None
            else:
                log.exception("job %s failed", job.id)  # details for whoever runs the server
                outcome = {"status": JobStatus.failed, "error": job_failure(error)}
        finally:
            self._current = None
        if outcome is None:
            self._give_back(job, context)
            return
        self._discard(job)
        self._record_end(job.id, context, outcome)
        log.info("job %s %s: %s", job.id, outcome["status"], context.counts)

    def _give_back(self, job: Job | Claimed, context: JobContext) -> None:
        """The job stopped without ending: back to the queue if this worker still has it."""
        try:
            context.flush()
            self.store.release(job.id, self.lease.owner, self.lease.label)
            log.info("job %s: put back in the queue", job.id)
        except JobStopped:
            log.info("job %s: another worker has it now", job.id)
        except Exception:
            log.warning("job %s: could not put it back; it is taken over", job.id)

    def _record_end(self, job_id: str, context: JobContext, outcome: dict[str, Any]) -> None:
        """Write how the job ended, retrying while the SQL database is away (the outage may
        be what ended it); if it does not come back, the job is taken over once this
        process's lease expires."""
        deadline = time.monotonic() + self.END_RETRY_SECONDS
        while True:
            try:
                context.flush()
                ended = {"finished_at": utcnow(), "owner": None, **outcome}
                self.store.update(job_id, self.lease.owner, **ended)
                return
            except JobStopped:
                log.warning("job %s: another worker has it now; its end is not recorded", job_id)
                return
            except Exception:
                if time.monotonic() > deadline:
                    log.exception("job %s: cannot record that it %s", job_id, outcome["status"])
                    return
                log.warning("job %s: recording its end failed; retrying", job_id)
                time.sleep(1)
