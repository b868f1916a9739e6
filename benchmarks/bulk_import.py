"""Bulk import against batched inserts, through load jobs on a Milvus 2.3 server + MariaDB.

    .venv/bin/python -m benchmarks.bulk_import \
        --moses-wheel DIR/molsets-0.3.1-py3-none-any.whl [--molecules all] [--pairs 100000]

Two sets: MOSES molecules (the molecular app; ``pip download molsets==0.3.1 --no-deps -d
DIR`` gets the wheel, which is read, not installed) and generated question/answer pairs (the
QA chatbot). Each set is written to one file and loaded twice by a path load, each time by
a fresh app process into a new collection: in batches (``SEARCH_BULK_IMPORT_DIR`` unset),
then through bulk import. Reported per load: seconds from the request to the job's end,
items per second, the job's own timings, the app's peak resident memory (``VmHWM``) and the
Milvus server's resident memory after it. Prints a table and writes
``benchmarks/results/bulk_import.json``.
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    ROOT,
    app_command,
    backend_env,
    milvus_server_pids,
    process_tree,
    rss_mib,
    serving,
    wait_for_job,
)
from benchmarks.molecular_search import moses_smiles
from solutions.qa_chatbot.tests.fixtures import generated_pairs, write_csv


def peak_rss_mib(pids: list[int]) -> float:
    """The processes' peak resident memory together (``VmHWM``), in MiB."""
    total = 0
    for pid in pids:
        status = Path(f"/proc/{pid}/status").read_text()
        total += sum(int(line.split()[1]) for line in status.splitlines() if "VmHWM" in line)
    return total / 1024


def load(env: dict[str, str], module: str, source: Path, collection: str, bulk: bool) -> dict:
    """Load ``source`` into ``collection`` with a fresh app process; what it took."""
    if bulk:
        folder = source.parent / "bulk"
        folder.mkdir(exist_ok=True)
        env = {**env, "SEARCH_BULK_IMPORT_DIR": str(folder)}
    env = {**env, "SEARCH_DATA_ROOTS": str(source.parent)}
    with serving(app_command(module), env) as (client, server):
        started = time.perf_counter()
        response = client.post(f"/collections/{collection}/loads/path", json={"path": str(source)})
        response.raise_for_status()
        job = wait_for_job(client, response.json()["id"])
        seconds = time.perf_counter() - started
        peak = peak_rss_mib(process_tree(server.pid))
        count = client.get(f"/collections/{collection}").json()["count"]
    assert job["status"] == "succeeded", job
    assert count == job["added"], (count, job)
    assert ("import" in job["timings"]) == bulk, job["timings"]
    return {
        "path": "bulk import" if bulk else "batched inserts",
        "items": job["added"],
        "seconds": round(seconds, 1),
        "items_per_s": round(job["added"] / seconds, 1),
        "timings": job["timings"],
        "app_peak_rss_mib": round(peak),
        "milvus_rss_mib": round(rss_mib(milvus_server_pids())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moses-wheel", type=Path, required=True)
    parser.add_argument("--molecules", default="all", help="how many, or 'all' (1,584,663)")
    parser.add_argument("--pairs", type=int, default=100_000)
    args = parser.parse_args()
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory() as folder, backend_env("server", Path(folder)) as env:
        workdir = Path(folder)
        data = workdir / "data"
        data.mkdir()
        count = None if args.molecules == "all" else int(args.molecules)
        molecules = data / "moses.smi"
        molecules.write_text("\n".join(moses_smiles(args.moses_wheel, count)) + "\n")
        pairs = write_csv(data / "pairs.csv", generated_pairs(args.pairs, seed=7))
        sets = {
            "MOSES molecules": ("solutions.molecular_search", molecules),
            "generated QA pairs": ("solutions.qa_chatbot", pairs),
        }
        for name, (module, source) in sets.items():
            results[name] = [
                load(env, module, source, f"{path}_load", bulk=path == "bulk")
                for path in ("batched", "bulk")
            ]
    print(
        "| set | path | items | seconds | items/s | job timings (s) | app peak MiB | Milvus MiB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in ("MOSES molecules", "generated QA pairs"):
        for row in results[name]:
            timings = ", ".join(f"{k} {v:.0f}" for k, v in row["timings"].items() if v >= 0.5)
            print(
                f"| {name} | {row['path']} | {row['items']:,} | {row['seconds']} | "
                f"{row['items_per_s']:,.0f} | {timings} | {row['app_peak_rss_mib']:,} | "
                f"{row['milvus_rss_mib']:,} |"
            )
    out = ROOT / "benchmarks" / "results" / "bulk_import.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
