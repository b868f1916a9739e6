"""FastAPI on uvicorn against Flask on gunicorn: the same QA chatbot handlers, side by side.

    .venv/bin/python -m benchmarks.frameworks [--backends lite,server] [--requests 200]
        [--json results.json]

Needs the bench extra (``scripts/install qa,test,bench``): Flask, gunicorn, matplotlib.
For each backend pair the QA sample is loaded once, then each server configuration is
started in turn on those stores: the FastAPI app as the demo runs it, and the Flask app of
``benchmarks/flask_qa.py`` (the same handler, encoder, batching, stores and job runner)
under gunicorn with threads and with sync workers; on the server pair, where several
processes may share the stores, also with two or five processes. Each is first checked to
answer the same questions with the same JSON as the FastAPI app, then measured: asks and
``/health/live`` (the framework alone) at concurrency 1, 8, 32 and 128, the load flow (the
sample uploaded into a new collection: the 202, then the job's end), and the memory of the
server's processes. The load generator shares the two cores with the server.
"""

import argparse
import asyncio
import csv
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.concurrency import CONCURRENCY, Call, Query, measured, qa_requests
from benchmarks.harness import (
    BACKEND_NAMES,
    app_command,
    backend_env,
    process_tree,
    rss_mib,
    running_app,
    serving,
    settled,
    wait_for_job,
)
from solutions.qa_chatbot.app import SAMPLE

CORES = os.cpu_count() or 2
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Server:
    label: str
    command: Callable[[int], list[str]]
    processes: int = 1
    lite: bool = True  # Milvus Lite serves its file to one process only

    @property
    def threads(self) -> str:
        """PyTorch's threads per process: the cores shared out, none oversubscribed."""
        return str(max(1, CORES // self.processes))


def gunicorn(worker: str, workers: int, threads: int = 1) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        return [
            str(BIN / "gunicorn"),
            *("--worker-class", worker, "--workers", str(workers), "--threads", str(threads)),
            *("--bind", f"127.0.0.1:{port}", "--log-level", "warning"),
            "benchmarks.flask_qa:create()",
        ]

    return command


def uvicorn_workers(workers: int) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        return [
            str(BIN / "uvicorn"),
            *("--factory", "solutions.qa_chatbot.app:create", "--workers", str(workers)),
            *("--port", str(port), "--log-level", "warning", "--no-access-log"),
        ]

    return command


# FastAPI runs its sync handlers on 40 threads (AnyIO's default); gthread gets as many.
SERVERS = (
    Server("FastAPI, uvicorn, 1 process", app_command("solutions.qa_chatbot")),
    Server("Flask, gunicorn gthread, 1 process x 40 threads", gunicorn("gthread", 1, 40)),
    Server("Flask, gunicorn sync, 1 process", gunicorn("sync", 1)),
    Server("FastAPI, uvicorn, 2 processes", uvicorn_workers(2), 2, lite=False),
    Server(
        "Flask, gunicorn gthread, 2 processes x 20 threads",
        gunicorn("gthread", 2, 20),
        2,
        lite=False,
    ),
    # gunicorn's documented starting point: 2 x cores + 1 workers
    Server(
        "Flask, gunicorn sync, 5 processes",
        gunicorn("sync", 2 * CORES + 1),
        2 * CORES + 1,
        lite=False,
    ),
)


def questions() -> list[str]:
    return [row["question"] for row in csv.DictReader(SAMPLE.open())]


def answers(client: httpx.Client, asked: list[str]) -> list[tuple[object, ...]]:
    """What each question gets: answered or not, the answer, the ids of the candidates.

    Scores are left out: on the server pair even one FastAPI process answered the same
    question with a fused score of 0.51805 before a load run and 0.518051 after it.
    """
    found = []
    for question in asked:
        body = client.post("/collections/faq/ask", json={"question": question}).json()
        found.append((body["answered"], body["answer"], [s["id"] for s in body["similar"]]))
    return found


def live(_index: int) -> Call:
    return Call("GET", "/health/live")


def load_flow(client: httpx.Client, collection: str) -> tuple[float, float]:
    """(ms to the 202, s to the job's end) for the sample uploaded into a new collection."""
    began = time.perf_counter()
    with SAMPLE.open("rb") as file:
        answer = client.post(f"/collections/{collection}/loads", files={"file": ("faq.csv", file)})
    accepted = time.perf_counter() - began
    if answer.status_code != 202:
        raise RuntimeError(f"the load answered {answer.status_code}: {answer.text}")
    job = wait_for_job(client, answer.json()["id"])
    if job["status"] != "succeeded" or job["added"] != job["total"]:
        raise RuntimeError(f"the load did not succeed: {job}")
    return accepted * 1000, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="lite")
    parser.add_argument("--requests", type=int, default=200, help="asks per concurrency level")
    parser.add_argument("--json", type=Path, help="also write every row to this file")
    args = parser.parse_args()
    rows: list[dict[str, object]] = []
    print(
        f"machine: {platform.machine()}, {CORES} cores; python {platform.python_version()}; "
        f"{args.requests} asks and {5 * args.requests} health checks per level\n"
    )
    print(
        "| backends | server | route | concurrency | QPS | p50 ms | p95 ms | p99 ms | "
        "failed | 503 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    flows: list[str] = []
    asked = questions()[:: max(1, len(questions()) // 20)]
    ask = qa_requests().query
    routes: tuple[tuple[str, Query, int], ...] = (
        ("ask", ask, args.requests),
        ("health/live", live, 5 * args.requests),
    )
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as work, ExitStack() as stack:
            workdir = Path(work)
            env = stack.enter_context(backend_env(backend, workdir))
            env["OMP_WAIT_POLICY"] = "PASSIVE"
            with running_app("solutions.qa_chatbot", env) as client:
                load_flow(client, "faq")
                expected = answers(client, asked)
            for number, server in enumerate(SERVERS):
                if backend == "lite" and not server.lite:
                    continue
                threads = {"OMP_NUM_THREADS": server.threads}
                with serving(server.command, env | threads) as (client, process):
                    settled(process.pid)
                    if answers(client, asked) != expected:
                        raise RuntimeError(f"{server.label} answers differently from FastAPI")
                    accepted, finished = load_flow(client, f"flow_{number}")
                    flows.append(
                        f"| {BACKEND_NAMES[backend]} | {server.label} | {accepted:.0f} | "
                        f"{finished:.2f} |"
                    )
                    base = str(client.base_url)
                    for route, request, count in routes:
                        asyncio.run(measured(base, request, 40, 8))  # warm up
                        for concurrency in CONCURRENCY:
                            run = asyncio.run(measured(base, request, count, concurrency))
                            print(
                                f"| {BACKEND_NAMES[backend]} | {server.label} | {route} | "
                                f"{run.concurrency} | {run.qps:.0f} | {run.p50:.1f} | "
                                f"{run.p95:.1f} | {run.p99:.1f} | {run.failed} | {run.busy} |",
                                flush=True,
                            )
                            rows.append(
                                {"backends": backend, "server": server.label, "route": route}
                                | dataclasses.asdict(run)
                            )
                    memory = rss_mib(process_tree(process.pid))
                    rows.append(
                        {"backends": backend, "server": server.label, "route": "load"}
                        | {"accepted_ms": accepted, "finished_s": finished, "rss_mib": memory}
                    )
                    flows[-1] += f" {memory:.0f} |"
                    if args.json:
                        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    print("\n| backends | server | 202 answered in ms | sample loaded in s | RSS MiB |")
    print("|---|---|---|---|---|")
    print("\n".join(flows))


if __name__ == "__main__":
    main()
