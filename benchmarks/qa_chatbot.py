"""QA chatbot over HTTP: load throughput through a job and ask latency, on both backend pairs.

    .venv/bin/python -m benchmarks.qa_chatbot [--backends lite,server] [--pairs 5000]

Starts the real app with uvicorn in a subprocess for each backend pair (Milvus Lite +
SQLite; a Milvus server + MySQL provisioned like the tests do), uploads the sample data and
a larger generated set through load jobs, then times asks with httpx. Prints a Markdown
table; numbers are measurements on the machine it runs on, not targets.
"""

import argparse
import csv
import os
import platform
import random
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

from benchmarks.harness import BACKEND_NAMES, backend_env, percentiles, running_app
from solutions.qa_chatbot.app import SAMPLE

ROOT = Path(__file__).resolve().parents[1]


def load(client: httpx.Client, collection: str, path: Path) -> dict[str, float]:
    start = time.perf_counter()
    with path.open("rb") as file:
        response = client.post(
            f"/collections/{collection}/loads", files={"file": (path.name, file, "text/csv")}
        )
    accepted = time.perf_counter() - start
    response.raise_for_status()
    job_id = response.json()["id"]
    while (job := client.get(f"/jobs/{job_id}").json())["status"] in {"queued", "running"}:
        time.sleep(0.05)
    elapsed = time.perf_counter() - start
    assert job["status"] == "succeeded" and job["failed"] == 0, job
    return {
        "items": job["added"],
        "seconds": elapsed,
        "per_second": job["added"] / elapsed,
        "accepted_ms": accepted * 1000,
        **{f"{k}_s": v for k, v in job["timings"].items()},
    }


def generated(path: Path, count: int) -> Path:
    rng = random.Random(0)
    words = [
        w.strip(".,?!;:()\"'").lower() for row in csv.reader(SAMPLE.open()) for w in row[0].split()
    ]
    words = sorted({w for w in words if w.isalpha()})
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["question", "answer"])
        seen: set[str] = set()
        while len(seen) < count:
            question = " ".join(rng.choices(words, k=rng.randint(6, 14))) + "?"
            if question not in seen:
                seen.add(question)
                writer.writerow([question, f"answer {len(seen)}"])
    return path


def ask_latencies(client: httpx.Client, questions: list[str], repeat: int) -> list[float]:
    latencies = []
    for question in questions * repeat:
        start = time.perf_counter()
        response = client.post("/collections/faq/ask", json={"question": question, "top_k": 5})
        latencies.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
    return latencies


def encoder_alone(questions: list[str], backend: str) -> float:
    from common.encoders.minilm import MiniLMEncoder

    cache = Path(tempfile.gettempdir()) / "bench-models"
    encoder = MiniLMEncoder(backend=backend, cache_dir=cache)  # type: ignore[arg-type]
    encoder.encode(questions[:64])  # warm up
    start = time.perf_counter()
    for _ in range(3):
        encoder.encode(questions)
    return 3 * len(questions) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="lite,server")
    parser.add_argument("--pairs", type=int, default=5000, help="size of the generated set")
    parser.add_argument("--asks", type=int, default=200)
    args = parser.parse_args()
    questions = [row["question"] for row in csv.DictReader(SAMPLE.open())]
    asks = random.Random(1).sample(questions, min(len(questions), args.asks))
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"python {platform.python_version()}\n"
    )
    rates = {backend: encoder_alone(questions, backend) for backend in ("onnx", "torch")}
    print(
        f"encoder alone (all-MiniLM-L6-v2, batch 64): ONNX Runtime {rates['onnx']:.0f} "
        f"questions/s, torch {rates['torch']:.0f} questions/s\n"
    )
    print(
        "| backends | sample load (pairs/s) | generated load (pairs/s) | encode share | "
        "202 answered in | ask p50 | ask p95 |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in args.backends.split(","):
        with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
            workdir = Path(tmp)
            env = stack.enter_context(backend_env(name, workdir))
            client = stack.enter_context(running_app("solutions.qa_chatbot", env))
            sample = load(client, "faq", SAMPLE)
            big = load(client, "generated", generated(workdir / "gen.csv", args.pairs))
            ask_latencies(client, asks[:20], 1)  # warm up
            latencies = ask_latencies(client, asks, 1)
            p50, p95 = percentiles(latencies)
            share = big.get("encode_s", 0) / big["seconds"]
            print(
                f"| {BACKEND_NAMES[name]}"
                f" | {sample['per_second']:.0f} ({sample['items']} in {sample['seconds']:.2f} s)"
                f" | {big['per_second']:.0f} ({big['items']} in {big['seconds']:.1f} s)"
                f" | {share:.0%} | {big['accepted_ms']:.0f} ms | {p50:.1f} ms | {p95:.1f} ms |",
                flush=True,
            )


if __name__ == "__main__":
    main()
