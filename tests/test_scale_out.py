"""One app over several processes on one Milvus server + MariaDB: API processes, job workers,
``uvicorn --workers``; processes killed with SIGKILL and their work taken over.

The processes are real ones (``python -m solutions.qa_chatbot`` with ``SEARCH_ROLE``), with
a 3-second lease so that takeovers happen within the test's patience. Around them: workers
racing for one queue (threads on their own connections), what a takeover does with a dead
worker's job (both pairs), and the single-process rule of SQLite and Milvus Lite.
"""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import ProgrammingError

from common.api.loads import discard_upload
from common.collection import Collections, Storage
from common.errors import BackendUnavailable
from common.jobs import MAX_ATTEMPTS, JobRunner, JobStore
from common.leases import Lease
from common.names import physical_name
from common.record_store import PENDING, RecordStore
from common.vector_store import VectorStore
from solutions.qa_chatbot.app import SOLUTION
from solutions.qa_chatbot.tests.fixtures import generated_pairs, write_csv
from solutions.qa_chatbot.tests.test_qa_chatbot import load_the_sample_and_ask
from tests.backends import reserve_ports
from tests.fixtures import Backend, provide_backend
from tests.helpers import wait_for_job

ROOT = Path(__file__).resolve().parents[1]
LEASE_S = 3
START_TIMEOUT = 180


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    url: str  # empty for a worker, which serves no HTTP
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@pytest.fixture
def server_pair(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return provide_backend("server", request, tmp_path)


@pytest.fixture
def environment(server_pair: Backend, tmp_path: Path, minilm: Any) -> dict[str, str]:
    """What every process of the app shares: the stores, the upload folder, the data root."""
    (tmp_path / "imports").mkdir(exist_ok=True)
    return {
        **os.environ,
        "SEARCH_MILVUS_URI": server_pair.milvus_uri,
        "SEARCH_SQL_URL": server_pair.sql_url,
        "SEARCH_UPLOAD_DIR": str(tmp_path / "uploads"),
        "SEARCH_MEDIA_DIR": str(tmp_path / "media"),
        "SEARCH_DATA_ROOTS": str(tmp_path / "imports"),
        "SEARCH_QA_MODEL_DIR": str(minilm.cache_dir),
        "SEARCH_LOAD_SAMPLE_DATA": "false",
        "SEARCH_LEASE_S": str(LEASE_S),
        "SEARCH_LOG_LEVEL": "INFO",
        "OMP_NUM_THREADS": "1",  # four processes on two cores
    }


@contextmanager
def started(
    environment: dict[str, str], role: str, folder: Path, command: list[str] | None = None
) -> Iterator[Process]:
    """A process of the QA app with ``role`` (or ``command``), killed at the end with any
    processes it started (uvicorn's workers would otherwise outlive it, and go on taking
    jobs from the queue)."""
    port = reserve_ports(1)[0]
    env = {**environment, "SEARCH_ROLE": role, "SEARCH_PORT": str(port)}
    log = folder / f"{role}-{port}.log"
    argv = command or [sys.executable, "-m", "solutions.qa_chatbot"]
    with log.open("wb") as out:
        popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group
        )
    process = Process(popen, "" if role == "worker" else f"http://127.0.0.1:{port}", log)
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGKILL)
        popen.wait(timeout=30)


def wait_ready(*processes: Process) -> None:
    """Until every API process answers readiness and every worker says it is ready."""
    deadline = time.monotonic() + START_TIMEOUT
    for process in processes:
        while True:
            assert process.popen.poll() is None, process.output()
            assert time.monotonic() < deadline, process.output()
            if process.url:
                try:
                    if httpx.get(f"{process.url}/health/ready", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
            elif "job worker for qa ready" in process.output():
                break
            time.sleep(0.3)


def load(client: httpx.Client, collection: str, source: Path) -> str:
    with source.open("rb") as file:
        response = client.post(f"/collections/{collection}/loads", files={"file": file})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def consistent_ids(backend: Backend, collection: str) -> set[int]:
    """The collection's ids, after checking that Milvus and SQL hold the same ones, each once
    in Milvus, none pending."""
    storage = Storage(VectorStore(backend.milvus_uri), RecordStore(backend.sql_url))
    try:
        capabilities = storage.vectors.capabilities
        collections = Collections(
            storage, SOLUTION.namespace, lambda options: SOLUTION.spec_for(options, capabilities)
        )
        table, physical = collections.get(collection).table, collections.get(collection).physical
        sql_ids = storage.records.all_ids(table)
        milvus_ids = storage.vectors.all_ids(physical)
        assert storage.records.ids_in_state(table, PENDING) == []
        assert milvus_ids == sql_ids
        assert storage.vectors.count(physical) == len(milvus_ids)  # no id twice
        return sql_ids
    finally:
        storage.close()


def pending_rows(engine: Engine, collection: str) -> int:
    """Rows of a QA collection written by a process that has not finished writing them."""
    table = physical_name(SOLUTION.namespace, collection)
    query = text(f"SELECT COUNT(*) FROM {table} WHERE item_state = :state")
    try:
        with engine.connect() as connection:
            return int(connection.scalar(query, {"state": PENDING}) or 0)
    except ProgrammingError:  # no such table yet
        return 0


def worker_pid(job: dict[str, Any], event: int = -1) -> int:
    """The pid of the worker that started the job (its last start by default)."""
    started = [e for e in job["history"] if e["event"] == "started"]
    return int(started[event]["worker"].rsplit(":", 1)[1])


def test_api_processes_queue_and_workers_run_loads_seen_from_every_process(
    environment: dict[str, str], tmp_path: Path, server_pair: Backend
) -> None:
    first = write_csv(tmp_path / "first.csv", generated_pairs(300, seed=1))
    second = write_csv(tmp_path / "second.csv", generated_pairs(300, seed=2))
    with ExitStack() as stack:
        a = stack.enter_context(started(environment, "api", tmp_path))
        b = stack.enter_context(started(environment, "api", tmp_path))
        workers = [stack.enter_context(started(environment, "worker", tmp_path)) for _ in "12"]
        wait_ready(a, b, *workers)
        api_a = stack.enter_context(httpx.Client(base_url=a.url, timeout=30))
        api_b = stack.enter_context(httpx.Client(base_url=b.url, timeout=30))
        processes = api_a.get("/health/processes").json()
        assert sorted(p["role"] for p in processes) == ["api", "api", "worker", "worker"]

        # Two loads at once, given to different API processes: each runs on a worker.
        one, two = load(api_a, "one", first), load(api_b, "two", second)
        jobs = [wait_for_job(api_b, one, timeout=300), wait_for_job(api_a, two, timeout=300)]
        for job in jobs:
            assert job["status"] == "succeeded" and job["added"] == 300, job
            assert job["attempts"] == 1 and worker_pid(job) in {w.pid for w in workers}, job
        assert worker_pid(jobs[0]) != worker_pid(jobs[1])  # the second worker took the second

        # Read-after-write across processes: searched at once, from both API processes.
        question = generated_pairs(300, seed=2)[17][0]
        for api in (api_a, api_b):
            assert api.get("/collections/two").json()["count"] == 300
            answer = api.post("/collections/two/ask", json={"question": question}).json()
            assert answer["matched_question"] == question, answer

    assert len(consistent_ids(server_pair, "one")) == 300
    assert len(consistent_ids(server_pair, "two")) == 300


def test_a_killed_worker_s_job_is_taken_over_and_finished_exactly(
    environment: dict[str, str], tmp_path: Path, server_pair: Backend
) -> None:
    pairs = generated_pairs(3000, seed=5)
    source = write_csv(tmp_path / "pairs.csv", pairs)
    with ExitStack() as stack:
        api = stack.enter_context(started(environment, "api", tmp_path))
        doomed = stack.enter_context(started(environment, "worker", tmp_path))
        wait_ready(api, doomed)
        client = stack.enter_context(httpx.Client(base_url=api.url, timeout=30))
        job_id = load(client, "big", source)
        heir = stack.enter_context(started(environment, "worker", tmp_path))
        deadline = time.monotonic() + 300
        while client.get(f"/jobs/{job_id}").json()["done"] < 500:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        wait_ready(heir)
        doomed.popen.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()

        job = wait_for_job(client, job_id, timeout=300)
        assert job["status"] == "succeeded", job
        events = [e["event"] for e in job["history"]]
        assert events == ["started", "requeued", "started"], job["history"]
        assert worker_pid(job, 0) == doomed.pid and worker_pid(job, 1) == heir.pid, job
        assert job["attempts"] == 2 and job["added"] + job["duplicates"] == len(pairs), job
        taken_over = next(e for e in job["history"] if e["event"] == "requeued")
        assert "stopped answering" in taken_over["detail"]
        assert time.monotonic() - killed_at > LEASE_S * 0.8  # not before the lease expired
    assert len(consistent_ids(server_pair, "big")) == len(pairs)


def test_a_process_killed_while_writing_leaves_nothing_pending_once_its_lease_expires(
    environment: dict[str, str], tmp_path: Path, server_pair: Backend
) -> None:
    source = write_csv(tmp_path / "pairs.csv", generated_pairs(4000, seed=8))
    engine = create_engine(server_pair.sql_url)
    with ExitStack() as stack:
        survivor = stack.enter_context(started(environment, "api", tmp_path))
        # Big batches keep rows pending for a while: the process is killed inside one.
        writer_env = {**environment, "SEARCH_JOB_BATCH_SIZE": "1000"}
        writer = stack.enter_context(started(writer_env, "all", tmp_path))
        wait_ready(survivor, writer)
        client = stack.enter_context(httpx.Client(base_url=writer.url, timeout=30))
        job_id = load(client, "killed", source)
        deadline = time.monotonic() + 300
        while client.get(f"/jobs/{job_id}").json()["added"] < 1000:  # one batch stored
            assert time.monotonic() < deadline, writer.output()
            time.sleep(0.05)
        while not pending_rows(engine, "killed"):  # and the next one being written
            assert time.monotonic() < deadline and writer.popen.poll() is None, writer.output()
            time.sleep(0.01)
        writer.popen.send_signal(signal.SIGKILL)
        writer.popen.wait()
        # The survivor's heartbeat notices the dead lease and sweeps the collection.
        deadline = time.monotonic() + LEASE_S * 10
        while left := pending_rows(engine, "killed"):
            assert time.monotonic() < deadline, f"{left} rows still pending"
            time.sleep(0.2)
        stored = consistent_ids(server_pair, "killed")
        assert len(stored) >= 1000  # the batches before the kill stayed
        api = stack.enter_context(httpx.Client(base_url=survivor.url, timeout=30))
        job = api.get(f"/jobs/{job_id}").json()
        assert job["status"] == "queued", job  # back in the queue, for the next worker
    engine.dispose()


def test_workers_racing_for_many_short_jobs_never_take_the_same_one(
    server_pair: Backend,
) -> None:
    """Eight claimers on their own connections (as eight worker processes would be) empty a
    queue of 300 jobs: each job is claimed exactly once."""
    engine = create_engine(server_pair.sql_url)
    RecordStore(server_pair.sql_url).create_system_tables()
    queue = JobStore(engine, "race")
    ids = {queue.create("c", f"job {i}", {"kind": "path", "path": str(i)}) for i in range(300)}
    claims: list[list[str]] = [[] for _ in range(8)]
    start = threading.Barrier(8)

    def claim_all(mine: list[str], number: int) -> None:
        store = JobStore(create_engine(server_pair.sql_url), "race")
        start.wait()
        while (claimed := store.claim(f"owner{number}", f"test:{number}")) is not None:
            mine.append(claimed.id)
        store.engine.dispose()

    threads = [threading.Thread(target=claim_all, args=(mine, n)) for n, mine in enumerate(claims)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    claimed = [job_id for mine in claims for job_id in mine]
    assert sorted(claimed) == sorted(ids)  # every job once, none twice
    assert sum(1 for mine in claims if mine) > 1  # they did race
    for job_id in list(ids)[:20]:
        job = queue.get(job_id)
        assert job.status == "running" and job.attempts == 1 and len(job.history) == 1
    engine.dispose()


def test_uvicorn_with_two_worker_processes_passes_the_qa_end_to_end_test(
    environment: dict[str, str], tmp_path: Path, server_pair: Backend
) -> None:
    port = reserve_ports(1)[0]
    command = [sys.executable, "-m", "uvicorn", "--factory", "solutions.qa_chatbot.app:create"]
    command += ["--workers", "2", "--port", str(port), "--log-level", "warning"]
    with started(environment, "all", tmp_path, command) as server:
        server.url = f"http://127.0.0.1:{port}"
        wait_ready(server)
        # A new connection per request, so that both processes answer.
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=server.url, timeout=60, limits=limits) as client:
            roles = [p["role"] for p in client.get("/health/processes").json()]
            assert roles == ["all", "all"], roles
            load_the_sample_and_ask(client)
    consistent_ids(server_pair, "faq")


@pytest.mark.parametrize("role", ["api", "worker"])
def test_a_split_role_on_the_embedded_pair_is_refused_with_the_way_out(
    role: str, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "SEARCH_MILVUS_URI": str(tmp_path / "milvus.db"),
        "SEARCH_SQL_URL": f"sqlite:///{tmp_path / 'records.db'}",
        "SEARCH_LOAD_SAMPLE_DATA": "false",
        "SEARCH_ROLE": role,
        "SEARCH_PORT": str(reserve_ports(1)[0]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "solutions.qa_chatbot"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
    )
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: SEARCH_ROLE={role} splits an app"), done.stderr
    assert "SQLite and Milvus Lite serve one process" in last and "scale-out.md" in last


def test_a_second_process_on_one_sqlite_database_is_refused(tmp_path: Path) -> None:
    from common.leases import SQLiteInUse, claim_sqlite, release_sqlite

    url = f"sqlite:///{tmp_path / 'records.db'}"
    assert claim_sqlite(url) and claim_sqlite(url)  # two apps of this process: fine
    script = "from common.leases import claim_sqlite; import sys; claim_sqlite(sys.argv[1])"
    other = subprocess.run(
        [sys.executable, "-c", script, url], cwd=ROOT, capture_output=True, text=True
    )
    assert other.returncode == 1 and SQLiteInUse.__name__ in other.stderr
    assert "SQLite serves one process" in other.stderr and "use MySQL" in other.stderr
    release_sqlite(url)
    release_sqlite(url)
    again = subprocess.run([sys.executable, "-c", script, url], cwd=ROOT, capture_output=True)
    assert again.returncode == 0, again.stderr  # released: another process may have it


@pytest.mark.parametrize("case", ["cancelled", "died too often", "requeued"])
def test_a_running_job_whose_worker_died_is_requeued_or_ended_and_its_upload_removed(
    case: str, backend: Backend, tmp_path: Path
) -> None:
    """What a process taking over does with a dead worker's job: run it again, or end it
    (cancelled meanwhile; its workers died ``MAX_ATTEMPTS`` times) and remove its upload."""
    engine = create_engine(backend.sql_url)
    RecordStore(backend.sql_url).create_system_tables()
    upload = tmp_path / "uploads" / "abc"
    upload.mkdir(parents=True)
    (upload / "pairs.csv").write_text("question,answer\n")
    store = JobStore(engine, "qa")
    job_id = store.create("faq", "pairs.csv", {"kind": "upload", "path": str(upload)})
    attempts = MAX_ATTEMPTS - 1 if case == "died too often" else 0
    for _ in range(attempts):
        store.claim("dead", "gone:1")
        store.release(job_id, "dead", "gone:1")
        store.update(job_id, attempts=store.get(job_id).attempts + 1)
    assert store.claim("dead", "gone:1") is not None  # by a worker holding no lease
    if case == "cancelled":
        assert store.request_cancel(job_id) is None  # running: only flagged
    lease = Lease(engine, "qa", "api", seconds=30)
    runner = JobRunner(store, lease)
    runner.start(None, discard_upload, lambda: None, alone=False)
    try:
        job = store.get(job_id)
        assert job.history[-1].event == "requeued", job.history
        expected = {"cancelled": "cancelled", "died too often": "failed", "requeued": "queued"}
        assert job.status == expected[case], job
        assert upload.exists() == (case == "requeued")  # kept for the worker that runs it
        if case == "died too often":
            assert job.attempts == MAX_ATTEMPTS and "stopped 3 times" in (job.error or "")
    finally:
        runner.shutdown()
        engine.dispose()


def test_a_worker_that_cannot_see_the_upload_fails_the_job_saying_what_to_share(
    qa: TestClient, tmp_path: Path
) -> None:
    """A worker on a host without the API process's upload folder: the job fails with the
    setting to fix, not an internal error."""
    runner = qa.app.state.context.runner  # type: ignore[attr-defined]
    missing = tmp_path / "elsewhere" / "0123"
    job = runner.submit("faq", "pairs.csv", {"kind": "upload", "path": str(missing)})
    ended = wait_for_job(qa, job.id)
    assert ended["status"] == "failed", ended
    assert f"cannot find upload {missing}" in ended["error"], ended
    assert "must share SEARCH_UPLOAD_DIR" in ended["error"], ended


def test_a_collection_lock_excludes_other_processes_and_dies_with_its_holder(
    server_pair: Backend, tmp_path: Path
) -> None:
    """``RecordStore.lock`` on MySQL: another store (another process's connections) waits
    for it, the holder may take it again, and a killed holder's lock is free at once."""
    holder, other = RecordStore(server_pair.sql_url), RecordStore(server_pair.sql_url)
    busy = pytest.raises(BackendUnavailable, match="stayed busy for 1 s")
    # Taken twice by the same thread, then tried by another store.
    with holder.lock("qa__faq"), holder.lock("qa__faq"), busy, other.lock("qa__faq", timeout=1):
        pass
    with other.lock("qa__faq", timeout=1):
        pass
    script = (
        "import sys, time; from common.record_store import RecordStore\n"
        "with RecordStore(sys.argv[1]).lock('qa__faq'):\n"
        "    print('held', flush=True); time.sleep(60)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script, server_pair.sql_url], cwd=ROOT, stdout=subprocess.PIPE
    )
    assert process.stdout is not None and process.stdout.readline() == b"held\n"
    with pytest.raises(BackendUnavailable), other.lock("qa__faq", timeout=1):
        pass
    process.kill()
    process.wait()
    with other.lock("qa__faq", timeout=5):  # the server let go when the connection died
        pass
    holder.close()
    other.close()
