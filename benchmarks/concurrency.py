"""Query speed under concurrent load, with micro-batching of the encoder off and on.

    .venv/bin/python -m benchmarks.concurrency [--backends lite,server] [--requests 400]
        [--queries "QA ask,molecule similarity"] [--json results.json]

Starts the QA chatbot, the image search and the molecular search apps (uvicorn, in a
subprocess, as the demo runs them) on a backend pair, loads their samples through load
jobs, then sends QA asks, image searches, molecule similarity and substructure searches
from an aiohttp client (asyncio) at concurrency 1, 8, 32 and 128: QPS, p50, p95 and p99
latency, failures, and 503s from a full queue (counted apart). The QA and image apps run
twice: with ``SEARCH_QUERY_BATCH_SIZE=1`` (every request encodes on its own: batching off)
and with the default (concurrent requests encoded as one batch). ``--json`` writes the rows
to a file as well. The load generator shares the two
cores with the server, so the numbers are what one machine does serving itself.
"""

import argparse
import asyncio
import csv
import dataclasses
import json
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from importlib import import_module
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from rdkit import RDLogger

from benchmarks.harness import (
    BACKEND_NAMES,
    app_command,
    backend_env,
    cpu_seconds,
    milvus_server_pids,
    process_tree,
    rss_mib,
    serving,
    wait_for_job,
)
from common.app import start_app
from common.context import AppContext
from solutions.image_search.app import SAMPLE as IMAGE_SAMPLE
from solutions.image_search.items import read_image
from solutions.molecular_search import routes as molecule_routes
from solutions.molecular_search.app import SAMPLE as MOLECULE_SAMPLE
from solutions.molecular_search.routes import SimilarityQuery
from solutions.molecular_search.screen import substructures
from solutions.qa_chatbot import routes as qa_routes
from solutions.qa_chatbot.app import SAMPLE as QA_SAMPLE
from solutions.qa_chatbot.encoders import as_encoders
from solutions.qa_chatbot.routes import AskRequest
from tests.imagery import altered, encoded, photos

CONCURRENCY = (1, 8, 32, 128)
BATCHING = {"off": "1", "on": ""}  # SEARCH_QUERY_BATCH_SIZE ("" = the default)


@dataclass(frozen=True)
class Run:
    concurrency: int
    qps: float
    p50: float
    p95: float
    p99: float
    failed: int
    busy: int  # 503: the queue was full


@dataclass(frozen=True)
class Call:
    """One request: a JSON body, or files as multipart (field, file name, bytes, type)."""

    method: str
    path: str
    json: Any = None
    files: tuple[tuple[str, str, bytes, str], ...] = ()

    def form(self) -> aiohttp.FormData | None:
        if not self.files:
            return None
        form = aiohttp.FormData()
        for field, name, content, kind in self.files:
            form.add_field(field, content, filename=name, content_type=kind)
        return form


Query = Callable[[int], Call]  # the index-th request of a run


async def measured(base: str, query: Query, count: int, concurrency: int) -> Run:
    """``count`` requests, ``concurrency`` at a time, over as many kept-alive connections.

    The load generator is aiohttp: httpx's AsyncClient could not load a server beyond ~600
    requests/s here, and fell to ~200/s at 128 connections (aiohttp: 2,000-3,000/s), so it
    measured itself.
    """
    latencies: list[float] = []
    failed = busy = 0
    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as session:

        async def one(index: int) -> None:
            nonlocal failed, busy
            call = query(index)
            async with gate:
                started = time.perf_counter()
                async with session.request(
                    call.method, call.path, json=call.json, data=call.form()
                ) as response:
                    await response.read()
                if response.status == 503:
                    busy += 1
                elif response.status != 200:
                    failed += 1
                else:
                    latencies.append((time.perf_counter() - started) * 1000)

        began = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        wall = time.perf_counter() - began
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return Run(
        concurrency,
        len(latencies) / wall,
        statistics.median(latencies),
        cuts[94],
        cuts[98],
        failed,
        busy,
    )


Direct = Callable[[AppContext], Callable[[int], object]]  # the same work, in-process


@dataclass(frozen=True)
class Workload:
    module: str
    prepare: Callable[[httpx.Client], None]
    query: Query
    direct: Direct  # what the route does once HTTP and the framework are done


def qa_requests() -> Workload:
    questions = [row["question"] for row in csv.DictReader(QA_SAMPLE.open())]
    random.Random(3).shuffle(questions)

    def prepare(client: httpx.Client) -> None:
        with QA_SAMPLE.open("rb") as file:
            job = client.post("/collections/faq/loads", files={"file": ("faq.csv", file)}).json()
        assert wait_for_job(client, job["id"])["status"] == "succeeded"

    def ask(index: int) -> Call:
        question = questions[index % len(questions)]
        return Call("POST", "/collections/faq/ask", {"question": question})

    def direct(context: AppContext) -> Callable[[int], object]:
        collection, encoders = context.collections.get("faq"), as_encoders(context.encoder)

        def ask_directly(index: int) -> object:
            request = AskRequest(question=questions[index % len(questions)])
            return qa_routes.ask(request, collection, encoders, context.settings)  # type: ignore[arg-type]

        return ask_directly

    return Workload("solutions.qa_chatbot", prepare, ask, direct)


def image_requests() -> Workload:
    queries = [
        encoded(altered(picture, "crop70", seed)) for seed, picture in enumerate(photos().values())
    ]

    def prepare(client: httpx.Client) -> None:
        files = [
            ("file", (path.name, path.read_bytes()))
            for path in sorted(IMAGE_SAMPLE.rglob("*"))
            if path.is_file()
        ]
        job = client.post("/collections/photos/loads", files=files).json()
        assert wait_for_job(client, job["id"])["status"] == "succeeded"

    def search(index: int) -> Call:
        query = queries[index % len(queries)]
        files = (("file", "query.png", query, "image/png"),)
        return Call("POST", "/collections/photos/search", files=files)

    def direct(context: AppContext) -> Callable[[int], object]:
        collection = context.collections.get("photos")

        def search_directly(index: int) -> object:
            pixels = context.settings.image_max_pixels  # type: ignore[attr-defined]
            image = read_image(queries[index % len(queries)], "query.png", "", max_pixels=pixels)
            return collection.search(context.encoder.encode([image.picture]), 10)

        return search_directly

    return Workload("solutions.image_search", prepare, search, direct)


SUBSTRUCTURES = ["c1ccccc1C(=O)[OX2H1]", "[#6]S(=O)(=O)N", "c1ccc2ncccc2c1", "C1CCNCC1"]


def molecule_requests(kind: str) -> Workload:
    smiles = [row["smiles"] for row in csv.DictReader(MOLECULE_SAMPLE.open())]
    random.Random(5).shuffle(smiles)

    def prepare(client: httpx.Client) -> None:
        job = client.post("/collections/drugs/loads/sample").json()
        assert wait_for_job(client, job["id"])["status"] == "succeeded"

    def similar(index: int) -> Call:
        body = {"smiles": smiles[index % len(smiles)], "top_k": 10}
        return Call("POST", "/collections/drugs/similar", body)

    def substructure(index: int) -> Call:
        body = {"query": SUBSTRUCTURES[index % len(SUBSTRUCTURES)], "limit": 100}
        return Call("POST", "/collections/drugs/substructure", body)

    def direct(context: AppContext) -> Callable[[int], object]:
        RDLogger.DisableLog("rdApp.*")  # the server logs RDKit's warnings; this process need not
        collection = context.collections.get("drugs")

        def similar_directly(index: int) -> object:
            body = SimilarityQuery(smiles=smiles[index % len(smiles)], top_k=10)
            return molecule_routes._similar(
                molecule_routes._parse(body.smiles), body, collection, context
            )

        def substructure_directly(index: int) -> object:
            query = molecule_routes._parse(SUBSTRUCTURES[index % len(SUBSTRUCTURES)], "smarts")
            _, found, _ = substructures(query, collection, 100)
            return collection.records([i for i, _ in found])

        return similar_directly if kind == "similar" else substructure_directly

    module = "solutions.molecular_search"
    if kind == "similar":
        return Workload(module, prepare, similar, direct)
    return Workload(module, prepare, substructure, direct)


def directly(module: str, env: dict[str, str], direct: Direct, count: int = 100) -> float:
    """p50 in ms of the workload's work done in this process, on the stores the app used."""
    solution = import_module(f"{module}.app").SOLUTION
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        settings = solution.settings_model()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    context = asyncio.run(start_app(solution, settings))
    try:
        work = direct(context)
        for index in range(10):  # warm up
            work(index)
        latencies = []
        for index in range(count):
            started = time.perf_counter()
            work(index)
            latencies.append((time.perf_counter() - started) * 1000)
        return statistics.median(latencies)
    finally:
        context.runner.shutdown()
        if context.batching is not None:
            context.batching.close()
        context.storage.close()


# What is measured: (label, workload, whether batching applies: molecules encode nothing
# worth batching, so they run once).
QUERIES: tuple[tuple[str, Callable[[], Workload], bool], ...] = (
    ("QA ask", qa_requests, True),
    ("image search", image_requests, True),
    ("molecule similarity", lambda: molecule_requests("similar"), False),
    ("molecule substructure", lambda: molecule_requests("substructure"), False),
)


# The launcher serves every app under its namespace: the same workloads, by prefix.
LAUNCHED = (("qa", "QA ask"), ("images", "image search"))
LAUNCHED += (("molecules", "molecule similarity"), ("molecules", "molecule substructure"))
NAMESPACES = ("qa", "images", "molecules", "video")


def samples_loaded(client: httpx.Client) -> None:
    """Wait until the sample load of every app (queued at its first start) has ended."""
    deadline = time.monotonic() + 1800
    for namespace in NAMESPACES:
        while True:
            jobs = client.get(f"/{namespace}/jobs").json()
            if jobs and all(job["status"] == "succeeded" for job in jobs):
                break
            if time.monotonic() > deadline or any(job["status"] == "failed" for job in jobs):
                raise RuntimeError(f"the {namespace} sample did not load: {jobs}")
            time.sleep(1)


def launcher_memory(backend: str, requests: int) -> tuple[list[str], dict[str, float | str]]:
    """Every app in one process (``python -m solutions``, as the demo runs), the samples
    loaded at first start: its memory once they are in and every workload warmed up, the
    four workloads at every concurrency level through the prefixes, and its memory after."""
    rows: list[str] = []
    queries = dict((label, made) for label, made, _ in QUERIES)
    with tempfile.TemporaryDirectory() as work, ExitStack() as stack:
        workdir = Path(work)
        env = stack.enter_context(backend_env(backend, workdir))
        env["SEARCH_LOAD_SAMPLE_DATA"] = "true"
        launcher = app_command("solutions")  # python -m solutions
        with serving(launcher, env, ready="/qa/health/ready") as (client, server):
            samples_loaded(client)
            workloads = []
            for namespace, label in LAUNCHED:
                query = queries[label]().query
                prefixed = partial(_prefixed, query, f"/{namespace}")
                base = str(client.base_url)
                asyncio.run(measured(base, prefixed, 40, 8))  # warm up
                workloads.append((label, prefixed))
            before = rss_mib(process_tree(server.pid))
            for label, prefixed in workloads:
                for concurrency in CONCURRENCY:
                    run = asyncio.run(measured(base, prefixed, requests, concurrency))
                    rows.append(
                        f"| {BACKEND_NAMES[backend]} | launcher: {label} | on | "
                        f"{run.concurrency} | {run.qps:.0f} | {run.p50:.0f} | {run.p95:.0f} | "
                        f"{run.p99:.0f} | {run.failed} | {run.busy} |"
                    )
                    print(rows[-1], flush=True)
            after = rss_mib(process_tree(server.pid))
    return rows, {
        "backends": backend,
        "launcher_rss_before_mib": before,
        "launcher_rss_after_mib": after,
    }


COLUMNS = (
    "| backends | query | batching | concurrency | QPS | p50 ms | p95 ms | p99 ms | failed | 503 |"
)


def table_head(*more: str) -> str:
    """The header of a Markdown table of runs, with ``more`` columns."""
    columns = COLUMNS + "".join(f" {name} |" for name in more)
    return columns + "\n|" + "---|" * (columns.count("|") - 1)


def cpu_used(server: int) -> tuple[float, float]:
    """CPU seconds used so far by the app (its process and children) and by the Milvus
    server this benchmark started (0 on Milvus Lite, which runs inside the app's tree)."""
    return cpu_seconds(process_tree(server)), cpu_seconds(milvus_server_pids())


def _prefixed(query: Query, prefix: str, index: int) -> Call:
    return prefixed(query(index), prefix)


def prefixed(call: Call, prefix: str) -> Call:
    """The same request to an app served under ``prefix`` (the launcher's ``/qa``, ...)."""
    return dataclasses.replace(call, path=prefix + call.path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="lite")
    parser.add_argument("--requests", type=int, default=400, help="per concurrency level")
    parser.add_argument("--queries", default="", help="labels to run, comma separated")
    parser.add_argument("--json", type=Path, help="also write every row to this file")
    parser.add_argument(
        "--launcher",
        action="store_true",
        help="instead: every app in one process, its memory before and after the load",
    )
    args = parser.parse_args()
    wanted = {label for label in args.queries.split(",") if label}
    rows: list[dict[str, object]] = []
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores; python "
        f"{platform.python_version()}; {args.requests} requests per level\n"
    )
    if args.launcher:
        print(table_head())
        memories = []
        for backend in args.backends.split(","):
            _, memory = launcher_memory(backend, args.requests)
            memories.append(memory)
            if args.json:
                args.json.write_text(json.dumps(memories, indent=1) + "\n")
        print("\n| backends | launcher RSS MiB, samples in and warmed up | after the load |")
        print("|---|---|---|")
        for memory in memories:
            before, after = memory["launcher_rss_before_mib"], memory["launcher_rss_after_mib"]
            print(f"| {BACKEND_NAMES[str(memory['backends'])]} | {before:.0f} | {after:.0f} |")
        return
    print(table_head("app CPU ms/request", "Milvus server CPU ms/request"))
    overheads: list[str] = []
    for backend in args.backends.split(","):
        for label, made, batched in QUERIES:
            if wanted and label not in wanted:
                continue
            workload = made()
            for batching, size in BATCHING.items() if batched else (("n/a", ""),):
                with tempfile.TemporaryDirectory() as work, ExitStack() as stack:
                    workdir = Path(work)
                    env = stack.enter_context(backend_env(backend, workdir))
                    env["SEARCH_LOAD_SAMPLE_DATA"] = "false"
                    if size:
                        env["SEARCH_QUERY_BATCH_SIZE"] = size
                    with serving(app_command(workload.module), env) as (client, server):
                        workload.prepare(client)
                        base = str(client.base_url)
                        asyncio.run(measured(base, workload.query, 40, 8))  # warm up
                        rss_before = rss_mib(process_tree(server.pid))
                        for concurrency in CONCURRENCY:
                            app_before, milvus_before = cpu_used(server.pid)
                            run = asyncio.run(
                                measured(base, workload.query, args.requests, concurrency)
                            )
                            app_after, milvus_after = cpu_used(server.pid)
                            app_cpu = (app_after - app_before) * 1000 / args.requests
                            milvus_cpu = (milvus_after - milvus_before) * 1000 / args.requests
                            shown = f"{milvus_cpu:.1f}" if backend == "server" else "-"
                            print(
                                f"| {BACKEND_NAMES[backend]} | {label} | {batching} | "
                                f"{run.concurrency} | {run.qps:.0f} | {run.p50:.0f} | "
                                f"{run.p95:.0f} | {run.p99:.0f} | {run.failed} | {run.busy} | "
                                f"{app_cpu:.1f} | {shown} |",
                                flush=True,
                            )
                            rows.append(
                                {"backends": backend, "query": label, "batching": batching}
                                | dataclasses.asdict(run)
                                | {"app_cpu_ms": app_cpu, "milvus_cpu_ms": milvus_cpu}
                            )
                            if concurrency == 1:
                                alone_over_http = run.p50
                        rss_after = rss_mib(process_tree(server.pid))
                    # The same work in this process, once the server has let the stores go.
                    in_process = directly(workload.module, env, workload.direct)
                    ratio = alone_over_http / in_process
                    overheads.append(
                        f"| {BACKEND_NAMES[backend]} | {label} | {batching} | "
                        f"{alone_over_http:.1f} | {in_process:.1f} | {ratio:.2f} | "
                        f"{rss_before:.0f} | {rss_after:.0f} |"
                    )
                    rows.append(
                        {"backends": backend, "query": label, "batching": batching}
                        | {"http_p50": alone_over_http, "in_process_p50": in_process}
                        | {"rss_before_mib": rss_before, "rss_after_mib": rss_after}
                    )
                    if args.json:
                        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    print(
        "\n| backends | query | batching | HTTP p50 ms (1 client) | in-process p50 ms | "
        "ratio | server RSS MiB before | after |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(overheads))


if __name__ == "__main__":
    main()
