"""Soak: thousands of mixed requests against every app in one process, memory sampled as it goes.

    .venv/bin/python -m benchmarks.soak [--backends lite,server] [--requests 10000]
        [--concurrency 32] [--seed 7] [--every 1000] [--json benchmarks/results/soak.json]

Starts the launcher (``python -m solutions``: the QA chatbot, image search, molecular search
and video analysis in one process under /qa, /images, /molecules and /video) on a backend
pair with every sample loaded at first start, then sends a fixed mix of requests (fixed
proportions, in an order shuffled with a fixed seed) from ``--concurrency`` aiohttp clients:
mostly QA asks, image searches and molecule similarity searches, plus QA pairs added (unique
text) and deleted again, pages of items, job status reads, and a few loads into scratch
collections, each followed until its job ends.

It reports the requests of each kind, every non-2xx by status and kind (429 and 503,
refusals under load, apart from other 5xx), p50 and p99 latency of each kind (of its 2xx
answers), and the resident memory of the launcher's process tree (Milvus Lite runs inside
it) every ``--every`` requests, with its growth after warm-up: ``--warmup`` mixed requests
(2,000) are sent first, unmeasured, because a fresh server's memory rises before it levels
off (image searches alone, 32 at a time on Lite: 1,642, 1,791, 1,817 and 1,827 MiB after
1,000 to 4,000; asks and molecule searches stay level from the start), and growth is counted
from the end of the warm-up to the end of the run. The goal: no 5xx, and less than 10%
growth after warm-up. Each 5xx (and each request
without a response) is kept in the JSON with its request, its response and the server log
records of its request id; the server's log goes to ``<--logs>/<backends>.log``. The load
generator shares the machine's cores with the server and its backends, so latencies are
those of one machine serving itself.
"""

import argparse
import asyncio
import csv
import io
import json
import os
import platform
import random
import re
import statistics
import tempfile
import time
from collections import Counter
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from benchmarks.concurrency import (
    NAMESPACES,
    Call,
    image_requests,
    molecule_requests,
    prefixed,
    qa_requests,
    samples_loaded,
)
from benchmarks.harness import (
    BACKEND_NAMES,
    ROOT,
    app_command,
    backend_env,
    process_tree,
    rss_mib,
    serving,
)
from tests.imagery import altered, encoded, photos

ASK, IMAGE, SIMILAR = "QA ask", "image search", "molecule similarity"
ADD, DELETE, PAGE, JOB, LOAD = "QA add", "QA delete", "items page", "job status", "load"
POLL = "load: job polls"  # following a load until its job ends: beyond the planned requests
DROP = "load: drop"  # then dropping the load's collection: beyond the planned requests
MIX = {  # per 1,000 requests
    ASK: 400,
    IMAGE: 150,
    SIMILAR: 150,
    ADD: 100,
    DELETE: 50,
    PAGE: 88,
    JOB: 60,
    LOAD: 2,
}
GOAL_GROWTH = 10.0  # % of RSS after warm-up
FINISHED = {"succeeded", "failed", "cancelled"}
EXAMPLES = 3  # kept of each distinct server error
LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def planned(count: int, seed: int) -> list[str]:
    """``count`` request kinds in the proportions of ``MIX``, shuffled with ``seed``; every
    delete comes after more adds than deletes (it removes a pair added before)."""
    counts = {kind: count * share // 1000 for kind, share in MIX.items()}
    counts[ASK] += count - sum(counts.values())
    kinds = [kind for kind, n in counts.items() for _ in range(n)]
    random.Random(seed).shuffle(kinds)
    balance = 0
    for index, kind in enumerate(kinds):
        if kind == DELETE and balance <= 0:
            later = kinds.index(ADD, index)
            kinds[index], kinds[later] = ADD, DELETE
        balance += {ADD: 1, DELETE: -1}.get(kinds[index], 0)
    return kinds


def ordinals(plan: list[str]) -> list[int]:
    """For each request, how many of its kind came before it (the n-th add, the n-th load)."""
    seen: Counter[str] = Counter()
    numbers = []
    for kind in plan:
        numbers.append(seen[kind])
        seen[kind] += 1
    return numbers


def p99(latencies: list[float]) -> float:
    if len(latencies) < 2:
        return latencies[0] if latencies else float("nan")
    return statistics.quantiles(latencies, n=100)[98]


def group(status: int) -> str:
    """What a status counts as in the report."""
    if status == 0:
        return "no response"
    if status in (429, 503):
        return "429/503"
    if status >= 500:
        return "5xx"
    if status >= 400:
        return "4xx"
    return "2xx" if 200 <= status < 300 else "other"


def described(call: Call) -> dict[str, Any]:
    """The request, as the report shows it (files by name, size and type)."""
    files = [{"field": f, "filename": n, "bytes": len(b), "type": t} for f, n, b, t in call.files]
    return {"method": call.method, "path": call.path, "json": call.json, "files": files}


def signature(kind: str, status: int, body: str) -> str:
    """One distinct error: its kind, status and message with the numbers taken out."""
    try:
        error = json.loads(body)["error"]
        text = f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        text = body[:200]
    return f"{kind} | {status} | {re.sub(r'[0-9a-f]{6,}|[0-9]+', '#', text)}"


@dataclass
class Site:
    """What the mix needs to know of the launcher before it starts."""

    pages: list[tuple[str, int]]  # (path of a listing, how many items it has)
    jobs: list[tuple[str, str]]  # (namespace, job id) of the sample loads

    @classmethod
    def of(cls, client: httpx.Client) -> "Site":
        pages = []
        for namespace, collection in (("qa", "faq"), ("images", "photos"), ("molecules", "drugs")):
            info = client.get(f"/{namespace}/collections/{collection}").json()
            pages.append((f"/{namespace}/collections/{collection}/items", info["count"]))
        pages.append(("/video/collections", 0))  # the video app has no item listing
        jobs = [
            (namespace, job["id"])
            for namespace in NAMESPACES
            for job in client.get(f"/{namespace}/jobs").json()
        ]
        return cls(pages, jobs)


@dataclass
class Kind:
    latencies: list[float] = field(default_factory=list)  # ms, of 2xx answers
    statuses: Counter[int] = field(default_factory=Counter)


@dataclass
class Traffic:
    """The planned requests, sent ``concurrency`` at a time, and what came back."""

    plan: list[str]
    seed: int
    site: Site
    server: int  # the launcher's pid
    every: int
    backend_pids: list[int]  # Milvus server, MariaDB: started by this benchmark, not the app
    kinds: dict[str, Kind] = field(default_factory=dict)
    errors: dict[str, dict[str, Any]] = field(default_factory=dict)  # signature -> what and how
    rss: list[dict[str, Any]] = field(default_factory=list)
    loads: list[dict[str, Any]] = field(default_factory=list)
    added: list[str] = field(default_factory=list)  # ids of QA pairs added, not yet deleted
    skipped: int = 0  # deletes that found nothing to delete
    done: int = 0
    sent: int = 0
    first: int = 0  # numbers the adds and loads from here (a warm-up and the run differ)

    def __post_init__(self) -> None:
        self.numbers = [self.first + n for n in ordinals(self.plan)]
        self.ask = qa_requests().query
        self.image = image_requests().query
        self.similar = molecule_requests("similar").query
        self.pictures = list(photos().values())
        self.pair_added = asyncio.Event()

    def sample_rss(self) -> None:
        tree = process_tree(self.server)
        self.rss.append(
            {
                "requests": self.done,
                "server_rss_mib": rss_mib(tree),
                "server_rss_by_process_mib": by_process(tree),
                "backends_rss_mib": rss_mib(self.backend_pids),
                "backends_rss_by_process_mib": by_process(self.backend_pids),
                "seconds": time.monotonic() - self.began,
            }
        )

    async def run(self, base: str, concurrency: int) -> float:
        """Send every planned request; the seconds it took."""
        connector = aiohttp.TCPConnector(limit=concurrency)
        timeout = aiohttp.ClientTimeout(total=300)
        indices = iter(range(len(self.plan)))
        self.began = time.monotonic()
        self.sample_rss()
        async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as session:

            async def client() -> None:
                for index in indices:  # shared: each client takes the next request
                    await self.one(session, index)
                    self.done += 1
                    if self.done % self.every == 0 or self.done == len(self.plan):
                        self.sample_rss()

            await asyncio.gather(*(client() for _ in range(concurrency)))
        return time.monotonic() - self.began

    async def one(self, session: aiohttp.ClientSession, index: int) -> None:
        kind, number = self.plan[index], self.numbers[index]
        rng = random.Random(f"{self.seed}-{index}")
        if kind == DELETE:
            item = await self.taken(rng)
            if item is None:
                self.skipped += 1
                return
            await self.send(session, kind, Call("DELETE", f"/qa/collections/faq/items/{item}"))
            return
        call = self.call(kind, number, rng)
        status, body = await self.send(session, kind, call)
        if kind == ADD and status == 201:
            self.added.append(json.loads(body)["id"])
            self.pair_added.set()
        elif kind == LOAD and status == 202:
            await self.followed(session, call, json.loads(body))

    def call(self, kind: str, number: int, rng: random.Random) -> Call:
        if kind == ASK:
            return prefixed(self.ask(number), "/qa")
        if kind == IMAGE:
            return prefixed(self.image(number), "/images")
        if kind == SIMILAR:
            return prefixed(self.similar(number), "/molecules")
        if kind == ADD:
            pair = {
                "question": f"Soak pair {number}: how do I tune widget {number} for speed?",
                "answer": f"Widget {number} is tuned by its dial number {number} (a soak test).",
            }
            return Call("POST", "/qa/collections/faq/items", pair)
        if kind == PAGE:
            path, count = self.site.pages[number % len(self.site.pages)]
            if not count:
                return Call("GET", path)
            offset, limit = rng.randrange(count), rng.choice((10, 50, 100))
            return Call("GET", f"{path}?offset={offset}&limit={limit}")
        if kind == JOB:
            namespace, job = rng.choice(self.site.jobs)
            if number % 4 == 3:
                return Call("GET", f"/{namespace}/jobs?limit=20")
            return Call("GET", f"/{namespace}/jobs/{job}")
        if kind == LOAD:
            return self.load(number)
        raise ValueError(kind)

    def load(self, number: int) -> Call:
        """The n-th load: a CSV of new QA pairs, the molecule sample again, or two new
        images, each into a new collection of its own (dropped once the load has ended, so
        that what the soak stores does not grow with its length)."""
        which = ("qa", "molecules", "images")[number % 3]
        path = f"/{which}/collections/soak_{which}_{number}/loads"
        if which == "molecules":
            return Call("POST", f"{path}/sample")
        if which == "qa":
            rows = io.StringIO()
            writer = csv.writer(rows)
            writer.writerow(["question", "answer"])
            for row in range(10):
                writer.writerow(
                    [f"Load {number} row {row}: what is gadget {number}-{row}?", f"A gadget {row}."]
                )
            return Call(
                "POST", path, files=(("file", "pairs.csv", rows.getvalue().encode(), "text/csv"),)
            )
        pictures = [
            (
                "file",
                f"load{number}-{i}.png",
                encoded(altered(p, "crop70", 1000 + number)),
                "image/png",
            )
            for i, p in enumerate(self.pictures[number % len(self.pictures) :][:2])
        ]
        return Call("POST", path, files=tuple(pictures))

    async def followed(
        self, session: aiohttp.ClientSession, call: Call, job: dict[str, Any]
    ) -> None:
        """Poll a load's job until it ends, as a client following it would."""
        namespace = call.path.split("/")[1]
        self.site.jobs.append((namespace, job["id"]))
        began = time.monotonic()
        while job["status"] not in FINISHED and time.monotonic() - began < 900:
            await asyncio.sleep(0.25)
            status, body = await self.send(
                session, POLL, Call("GET", f"/{namespace}/jobs/{job['id']}")
            )
            if status != 200:
                break
            job = json.loads(body)
        collection = call.path.removesuffix("/sample").removesuffix("/loads")
        await self.send(session, DROP, Call("DELETE", collection))
        self.loads.append(
            {
                "path": call.path,
                "status": job["status"],
                "seconds": round(time.monotonic() - began, 2),
                "added": job.get("added"),
                "failed": job.get("failed"),
                "errors": job.get("errors", [])[:3],
            }
        )

    async def taken(self, rng: random.Random) -> str | None:
        """A pair this soak added (waiting for one if its add is still on its way)."""
        with suppress(TimeoutError):
            async with asyncio.timeout(120):
                while not self.added:
                    self.pair_added.clear()
                    await self.pair_added.wait()
        return self.added.pop(rng.randrange(len(self.added))) if self.added else None

    async def send(
        self, session: aiohttp.ClientSession, kind: str, call: Call
    ) -> tuple[int, bytes]:
        """One request, timed and counted; a 5xx or no answer kept with what it was."""
        self.sent += 1
        request_id = f"soak-{self.sent}"
        started = time.perf_counter()
        try:
            async with session.request(
                call.method,
                call.path,
                json=call.json,
                data=call.form(),
                headers={"X-Request-ID": request_id},
            ) as response:
                body = await response.read()
            status = response.status
        except (aiohttp.ClientError, TimeoutError) as failure:
            status, body = 0, repr(failure).encode()
        elapsed = (time.perf_counter() - started) * 1000
        counted = self.kinds.setdefault(kind, Kind())
        counted.statuses[status] += 1
        if 200 <= status < 300:
            counted.latencies.append(elapsed)
        elif status == 0 or status >= 500:
            text = body.decode("utf-8", "replace")
            error = self.errors.setdefault(
                signature(kind, status, text),
                {"kind": kind, "status": status, "count": 0, "examples": []},
            )
            error["count"] += 1
            if len(error["examples"]) < EXAMPLES:
                error["examples"].append(
                    {
                        "request_id": request_id,
                        "request": described(call),
                        "response": text[:2000],
                        "ms": round(elapsed, 1),
                        "after_requests": self.done,
                    }
                )
        return status, body


def by_process(pids: list[int]) -> dict[str, float]:
    """Resident memory in MiB by process name (the launcher is ``python``; Milvus Lite's
    server, which the launcher started, is ``milvus``)."""
    names: dict[str, list[int]] = {}
    for pid in pids:
        try:
            names.setdefault(Path(f"/proc/{pid}/comm").read_text().strip(), []).append(pid)
        except OSError:
            continue
    return {name: round(rss_mib(group), 1) for name, group in sorted(names.items())}


def log_records(log: Path) -> list[str]:
    """The server log as records (a record's traceback lines belong to it)."""
    records: list[str] = []
    for line in log.read_text(errors="replace").splitlines():
        if LOG_RECORD.match(line) or not records:
            records.append(line)
        else:
            records[-1] += "\n" + line
    return records


def headline(record: str) -> str:
    """A log record without its time and request id: its first line, and the last line of
    its traceback if it has one."""
    lines = record.splitlines()
    first = re.sub(r"\[[^\]]*\]", "[…]", lines[0].split(" ", 2)[-1])
    return first if len(lines) == 1 else f"{first} … {lines[-1]}"


def with_log(errors: dict[str, dict[str, Any]], log: Path) -> dict[str, Any]:
    """Each kept error example with the log records of its request id and the two either
    side; how many records of each level the whole log has, and its errors by headline."""
    records = log_records(log) if log.exists() else []
    for error in errors.values():
        for example in error["examples"]:
            tag = f"[{example['request_id']}]"
            hits = [i for i, record in enumerate(records) if tag in record]
            near = sorted({j for i in hits for j in range(i - 2, i + 3) if 0 <= j < len(records)})
            example["log"] = [records[j] for j in near] or ["(no log record has this request id)"]
    levels = Counter(r.split()[2] for r in records if LOG_RECORD.match(r) and len(r.split()) > 2)
    failures = Counter(
        headline(record)
        for record in records
        if LOG_RECORD.match(record) and record.split()[2] in ("ERROR", "CRITICAL")
    )
    return {"levels": dict(levels), "error_records": dict(failures.most_common(20))}


def soak(backend: str, args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    """The launcher on ``backend`` with its samples loaded, and the whole mix sent to it."""
    log = logs / f"{backend}.log"
    plan = planned(args.requests, args.seed)
    with tempfile.TemporaryDirectory() as work, ExitStack() as stack:
        ours = set(process_tree(os.getpid()))
        env = stack.enter_context(backend_env(backend, Path(work)))
        env["SEARCH_LOAD_SAMPLE_DATA"] = "true"
        started = time.monotonic()
        launcher = app_command("solutions")  # python -m solutions
        with serving(launcher, env, ready="/qa/health/ready", log=log) as (client, server):
            samples_loaded(client)
            loaded = time.monotonic() - started
            print(
                f"{BACKEND_NAMES[backend]}: started, samples loaded in {loaded:.0f} s", flush=True
            )
            site = Site.of(client)
            app = set(process_tree(server.pid))
            backends = [p for p in process_tree(os.getpid()) if p not in ours | app]
            base = str(client.base_url)
            warmup = Traffic(
                planned(args.warmup, args.seed + 1), args.seed + 1, site, server.pid,
                args.every, backends, first=10**6,
            )  # fmt: skip
            if args.warmup:
                asyncio.run(warmup.run(base, args.concurrency))
                print(f"{BACKEND_NAMES[backend]}: warmed up with {warmup.sent} requests")
            traffic = Traffic(plan, args.seed, site, server.pid, args.every, backends)
            wall = asyncio.run(traffic.run(base, args.concurrency))
    kinds: dict[str, dict[str, Any]] = {}
    for kind in (*MIX, POLL, DROP):
        counted = traffic.kinds.get(kind, Kind())
        groups: Counter[str] = Counter()
        for status, n in counted.statuses.items():
            groups[group(status)] += n
        kinds[kind] = {
            "requests": sum(counted.statuses.values()),
            "statuses": {str(s): n for s, n in sorted(counted.statuses.items())},
            "by_group": dict(groups),
            "p50_ms": statistics.median(counted.latencies) if counted.latencies else None,
            "p99_ms": p99(counted.latencies) if counted.latencies else None,
        }
    warm, end = traffic.rss[0]["server_rss_mib"], traffic.rss[-1]["server_rss_mib"]
    five = sum(k["by_group"].get("5xx", 0) for k in kinds.values())
    return {
        "backends": backend,
        "requests": args.requests,
        "sent": traffic.sent,
        "concurrency": args.concurrency,
        "seed": args.seed,
        "samples_loaded_s": round(loaded, 1),
        "wall_s": round(wall, 1),
        "kinds": kinds,
        "server_5xx": five,
        "refused_429_503": sum(k["by_group"].get("429/503", 0) for k in kinds.values()),
        "no_response": sum(k["by_group"].get("no response", 0) for k in kinds.values()),
        "deletes_skipped": traffic.skipped,
        "warmup_requests": warmup.sent,
        "warmup_rss": warmup.rss,
        "warmup_5xx": sum(
            n for kind in warmup.kinds.values() for s, n in kind.statuses.items() if s >= 500
        ),
        "rss": traffic.rss,
        "rss_after_warmup_growth_pct": (end - warm) / warm * 100,
        "goal_met": {"zero_5xx": five == 0, "rss_growth_under_10pct": end < warm * 1.1},
        "loads": traffic.loads,
        "errors": list(traffic.errors.values()),
        "server_log": str(log),
        "log": with_log(traffic.errors, log),
    }


def tables(runs: list[dict[str, Any]]) -> str:
    """The runs as Markdown: per kind, errors by status, memory, and the goal."""
    lines = [
        "| backends | kind | requests | 2xx | p50 ms | p99 ms | 4xx | 429/503 | 5xx "
        "| no response |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        name = BACKEND_NAMES[run["backends"]]
        for kind, row in run["kinds"].items():
            by = row["by_group"]
            p50 = "-" if row["p50_ms"] is None else f"{row['p50_ms']:.0f}"
            p99_ = "-" if row["p99_ms"] is None else f"{row['p99_ms']:.0f}"
            lines.append(
                f"| {name} | {kind} | {row['requests']} | {by.get('2xx', 0)} | {p50} | {p99_} | "
                f"{by.get('4xx', 0)} | {by.get('429/503', 0)} | {by.get('5xx', 0)} | "
                f"{by.get('no response', 0)} |"
            )
    lines += ["", "| backends | kind | status | count |", "|---|---|---|---|"]
    for run in runs:
        name = BACKEND_NAMES[run["backends"]]
        wrong = [
            (kind, status, n)
            for kind, row in run["kinds"].items()
            for status, n in row["statuses"].items()
            if not 200 <= int(status) < 300
        ]
        lines += [
            f"| {name} | {k} | {s if s != '0' else 'no response'} | {n} |" for k, s, n in wrong
        ]
        if not wrong:
            lines.append(f"| {name} | every kind | only 2xx | - |")
    lines += [
        "",
        "| backends | requests done | s | server RSS MiB | by process | backends RSS MiB |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        name = BACKEND_NAMES[run["backends"]]
        for mark in run["rss"]:
            others = f"{mark['backends_rss_mib']:.0f}" if mark["backends_rss_mib"] else "-"
            parts = ", ".join(
                f"{name} {mib:.0f}" for name, mib in mark["server_rss_by_process_mib"].items()
            )
            lines.append(
                f"| {name} | {mark['requests']} | {mark['seconds']:.0f} | "
                f"{mark['server_rss_mib']:.0f} | {parts} | {others} |"
            )
    lines += [
        "",
        f"Goal: zero 5xx; server RSS growth after warm-up (from the end of the warm-up to the end) "
        f"under {GOAL_GROWTH:.0f}%.",
        "",
        "| backends | requests sent | s | req/s | 5xx | 429/503 | no response | RSS growth "
        "after warm-up | zero 5xx | growth < 10% |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        met = run["goal_met"]
        lines.append(
            f"| {BACKEND_NAMES[run['backends']]} | {run['sent']} | {run['wall_s']:.0f} | "
            f"{run['sent'] / run['wall_s']:.1f} | {run['server_5xx']} | "
            f"{run['refused_429_503']} | {run['no_response']} | "
            f"{run['rss_after_warmup_growth_pct']:+.1f}% | {'yes' if met['zero_5xx'] else 'NO'} | "
            f"{'yes' if met['rss_growth_under_10pct'] else 'NO'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="lite,server")
    parser.add_argument("--requests", type=int, default=10_000, help="planned, per backend pair")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--warmup", type=int, default=2000, help="mixed requests sent first, not measured"
    )
    parser.add_argument("--every", type=int, default=1000, help="requests between RSS samples")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "soak.json")
    parser.add_argument("--logs", type=Path, help="folder for the server logs (default: a new one)")
    args = parser.parse_args()
    logs = args.logs or Path(tempfile.mkdtemp(prefix="soak-logs-"))
    logs.mkdir(parents=True, exist_ok=True)
    shares = ", ".join(f"{kind} {share / 10:g}%" for kind, share in MIX.items())
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores; python "
        f"{platform.python_version()}; {args.requests} requests at concurrency "
        f"{args.concurrency}, seed {args.seed}; mix: {shares}; server logs in {logs}\n",
        flush=True,
    )
    runs = []
    for backend in args.backends.split(","):
        runs.append(soak(backend, args, logs))
        args.json.write_text(json.dumps(runs, indent=1) + "\n")
    print(tables(runs))
    for run in runs:
        for error in run["errors"]:
            example = error["examples"][0]
            print(
                f"\n{BACKEND_NAMES[run['backends']]}: {error['count']} x {error['kind']} "
                f"{error['status'] or 'no response'}: {example['request']['method']} "
                f"{example['request']['path']} -> {example['response'][:300]}"
            )


if __name__ == "__main__":
    main()
