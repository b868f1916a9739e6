"""The QA chatbot over several processes on a Milvus 2.3 server + MariaDB (docs/scale-out.md).

    .venv/bin/python -m benchmarks.scale_out [--pairs 1500] [--requests 300]

1. **Loads with 1, 2 and 4 job workers**: one API process (``SEARCH_ROLE=api``) and N
   worker processes (``SEARCH_ROLE=worker``); four loads of ``--pairs`` generated pairs, into
   four collections, submitted at once; pairs stored per second from the first submit to
   the last job's end.
2. **Asks with 1 and 2 API processes**: ``uvicorn --workers 1`` and ``--workers 2`` on one
   port, the sample loaded, ``--requests`` asks at 1, 8 and 32 concurrent clients.

Prints a table per part and writes ``benchmarks/results/scale_out.json``.
"""

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from benchmarks.concurrency import measured, qa_requests
from benchmarks.harness import ROOT, backend_env, cpu_seconds, process_tree, serving, wait_for_job
from solutions.qa_chatbot.tests.fixtures import generated_pairs, write_csv

WORKERS = (1, 2, 4)
PROCESSES = (1, 2)
CONCURRENCY = (1, 8, 32)
LOADS = 4


@contextmanager
def worker(env: dict[str, str], log: Path) -> Iterator[int]:
    """A job worker of the QA app (no HTTP), until it says it is ready; yields its pid."""
    import subprocess

    env = {**os.environ, "SEARCH_LOG_LEVEL": "INFO", **env, "SEARCH_ROLE": "worker"}
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "solutions.qa_chatbot"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 180
        while "job worker for qa ready" not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start; see {log}")
            time.sleep(0.2)
        yield process.pid
    finally:
        process.terminate()
        process.wait(60)


def load_throughput(env: dict[str, str], workdir: Path, workers: int, pairs: int) -> dict:
    """Four loads at once into four collections, run by ``workers`` worker processes."""
    sources = [
        write_csv(workdir / f"load{i}.csv", generated_pairs(pairs, seed=100 * workers + i))
        for i in range(LOADS)
    ]
    log = workdir / f"workers-{workers}.log"
    api_env = {**env, "SEARCH_ROLE": "api", "SEARCH_MAX_QUEUED_JOBS": "100"}
    command = lambda _port: [sys.executable, "-m", "solutions.qa_chatbot"]  # noqa: E731
    with ExitStack() as stack:
        client, _server = stack.enter_context(serving(command, api_env, log=log))
        pids = [stack.enter_context(worker(env, log)) for _ in range(workers)]
        cpu_before = cpu_seconds([p for pid in pids for p in process_tree(pid)])
        started = time.perf_counter()
        ids = []
        for i, source in enumerate(sources):
            with source.open("rb") as file:
                response = client.post(f"/collections/w{workers}_{i}/loads", files={"file": file})
            ids.append(response.json()["id"])
        jobs = [wait_for_job(client, job_id) for job_id in ids]
        seconds = time.perf_counter() - started
        cpu = cpu_seconds([p for pid in pids for p in process_tree(pid)]) - cpu_before
    assert all(job["status"] == "succeeded" and job["added"] == pairs for job in jobs), jobs
    runners = {e["worker"] for job in jobs for e in job["history"] if e["event"] == "started"}
    return {
        "workers": workers,
        "pairs": pairs * LOADS,
        "seconds": round(seconds, 1),
        "pairs_per_s": round(pairs * LOADS / seconds, 1),
        "workers_used": len(runners),
        "worker_cpu_s": round(cpu, 1),
    }


def ask_throughput(env: dict[str, str], workdir: Path, processes: int, requests: int) -> dict:
    """Asks against ``uvicorn --workers processes``."""
    workload = qa_requests()
    command = lambda port: [  # noqa: E731
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "solutions.qa_chatbot.app:create",
        "--workers",
        str(processes),
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    log = workdir / f"uvicorn-{processes}.log"
    with serving(command, env, log=log) as (client, server):
        if processes == 1:
            workload.prepare(client)
        base = str(client.base_url)
        runs = []
        for concurrency in CONCURRENCY:
            asyncio.run(measured(base, workload.query, 20, concurrency))  # warm every process
            run = asyncio.run(measured(base, workload.query, requests, concurrency))
            runs.append(run.__dict__)
        serving_pids = process_tree(server.pid)
    return {"processes": processes, "runs": runs, "pids": len(serving_pids)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1500, help="pairs per load (4 loads)")
    parser.add_argument("--requests", type=int, default=300, help="asks per concurrency")
    args = parser.parse_args()
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory() as folder, backend_env("server", Path(folder)) as env:
        workdir = Path(folder)
        env = {**env, "SEARCH_LOAD_SAMPLE_DATA": "false"}
        results["loads"] = [
            load_throughput(env, workdir, workers, args.pairs) for workers in WORKERS
        ]
        print("| job workers | pairs | seconds | pairs/s | workers that ran one | worker CPU s |")
        print("|---|---|---|---|---|---|")
        for row in results["loads"]:
            print(
                f"| {row['workers']} | {row['pairs']:,} | {row['seconds']} | "
                f"{row['pairs_per_s']} | {row['workers_used']} | {row['worker_cpu_s']} |"
            )
        results["asks"] = [
            ask_throughput(env, workdir, processes, args.requests) for processes in PROCESSES
        ]
        print()
        print("| API processes | clients | asks/s | p50 ms | p95 ms | failed | 503 |")
        print("|---|---|---|---|---|---|---|")
        for entry in results["asks"]:
            for run in entry["runs"]:
                print(
                    f"| {entry['processes']} | {run['concurrency']} | {run['qps']:.1f} | "
                    f"{run['p50']:.1f} | {run['p95']:.1f} | {run['failed']} | {run['busy']} |"
                )
    out = ROOT / "benchmarks" / "results" / "scale_out.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
