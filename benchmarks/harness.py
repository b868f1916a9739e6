"""What the benchmarks share: start an app over HTTP on a backend pair, time requests."""

import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
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
    port = free_port()
    env = {
        **os.environ,
        **env,
        "SEARCH_PORT": str(port),
        "SEARCH_LOAD_SAMPLE_DATA": "false",
        "SEARCH_LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen([sys.executable, "-m", module], cwd=ROOT, env=env)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        deadline = time.monotonic() + 120
        while True:
            try:
                if client.get("/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the app did not become ready")
            time.sleep(0.2)
        yield client
    finally:
        server.terminate()
        server.wait(30)


@contextmanager
def backend_env(name: str, workdir: Path) -> Iterator[dict[str, str]]:
    if name == "lite":
        yield {
            "SEARCH_MILVUS_URI": str(workdir / "milvus.db"),
            "SEARCH_SQL_URL": f"sqlite:///{workdir / 'records.db'}",
        }
        return
    from tests.backends import MilvusServer, provision_mysql

    with MilvusServer(ROOT / ".cache" / "milvus-server") as milvus:
        mysql = provision_mysql(workdir / "mysql")
        try:
            yield {"SEARCH_MILVUS_URI": milvus.uri, "SEARCH_SQL_URL": mysql.url}
        finally:
            mysql.close()


def wait_for_job(client: httpx.Client, job_id: str) -> dict:
    while (job := client.get(f"/jobs/{job_id}").json())["status"] in {"queued", "running"}:
        time.sleep(0.05)
    return job


def percentiles(latencies_ms: list[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds."""
    return statistics.median(latencies_ms), statistics.quantiles(latencies_ms, n=20)[-1]
