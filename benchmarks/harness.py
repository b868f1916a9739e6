"""What the benchmarks share: start an app over HTTP on a backend pair, time requests."""

import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BACKEND_NAMES = {"lite": "Milvus Lite + SQLite", "server": "Milvus 2.3 server + MySQL"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_app(module: str, env: dict[str, str]) -> Iterator[httpx.Client]:
    """``python -m module`` serving on a free port, as the demo runs an app."""
    with serving(app_command(module), env) as (client, _):
        yield client


def app_command(module: str) -> Callable[[int], list[str]]:
    """The command that runs an app as the demo does (its port comes from SEARCH_PORT)."""
    return lambda _port: [sys.executable, "-m", module]


@contextmanager
def serving(
    command: Callable[[int], list[str]],
    env: dict[str, str],
    ready: str = "/health/ready",
    log: Path | None = None,
) -> Iterator[tuple[httpx.Client, subprocess.Popen[bytes]]]:
    """``command(port)`` started with the app settings in ``env`` (no sample loaded unless
    ``env`` says so), once ``ready`` answers 200. ``log``: a file for the server's output
    (stdout and stderr, where its log goes) instead of this process's."""
    port = free_port()
    env = {
        **os.environ,
        "SEARCH_LOAD_SAMPLE_DATA": "false",
        "SEARCH_LOG_LEVEL": "WARNING",
        **env,
        "SEARCH_PORT": str(port),
    }
    output = log.open("ab") if log is not None else None
    merged = subprocess.STDOUT if output is not None else None
    server = subprocess.Popen(command(port), cwd=ROOT, env=env, stdout=output, stderr=merged)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        deadline = time.monotonic() + 120
        while True:
            try:
                if client.get(ready).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the app did not become ready")
            time.sleep(0.2)
        yield client, server
    finally:
        server.terminate()
        server.wait(30)
        if output is not None:
            output.close()


@contextmanager
def backend_env(name: str, workdir: Path) -> Iterator[dict[str, str]]:
    """The settings of an app on the backend pair ``name``, its uploads and media files in
    ``workdir`` as well (the server pair is started here, and stopped on leaving)."""
    files = {
        "SEARCH_UPLOAD_DIR": str(workdir / "uploads"),
        "SEARCH_MEDIA_DIR": str(workdir / "media"),
    }
    if name == "lite":
        yield files | {
            "SEARCH_MILVUS_URI": str(workdir / "milvus.db"),
            "SEARCH_SQL_URL": f"sqlite:///{workdir / 'records.db'}",
        }
        return
    from tests.backends import MilvusServer, provision_mysql

    with MilvusServer(ROOT / ".cache" / "milvus-server") as milvus:
        mysql = provision_mysql(workdir / "mysql")
        try:
            yield files | {"SEARCH_MILVUS_URI": milvus.uri, "SEARCH_SQL_URL": mysql.url}
        finally:
            mysql.close()


def wait_for_job(client: httpx.Client, job_id: str) -> dict:
    while (job := client.get(f"/jobs/{job_id}").json())["status"] in {"queued", "running"}:
        time.sleep(0.05)
    return job


def percentiles(latencies_ms: list[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds."""
    return statistics.median(latencies_ms), statistics.quantiles(latencies_ms, n=20)[-1]


def _stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (None once the process ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (the workers a server forked or spawned)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat(stat.parent.name)
        if fields is not None:
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(current := todo.pop())
        todo.extend(parents.get(current, []))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes used so far."""
    ticks = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_mib(pids: list[int]) -> float:
    """Resident memory of the processes together, in MiB."""
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        rss = [int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")]
        total += sum(rss)  # none for a process that is ending
    return total / 1024


def milvus_server_pids() -> list[int]:
    """The Milvus server processes this benchmark started (``backend_env("server", ...)``)."""
    return [
        pid
        for pid in process_tree(os.getpid())
        if Path(f"/proc/{pid}/comm").is_file()
        and Path(f"/proc/{pid}/comm").read_text().strip() == "milvus"
    ]


def settled(pid: int, timeout: float = 180) -> None:
    """Wait until the server and its workers are idle (every worker has started)."""
    deadline = time.monotonic() + timeout
    before = cpu_seconds(process_tree(pid))
    while time.monotonic() < deadline:
        time.sleep(1)
        now = cpu_seconds(process_tree(pid))
        if now - before < 0.05:
            return
        before = now
    raise RuntimeError("the server kept computing: its workers did not settle")
