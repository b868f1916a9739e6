"""Molecular search: fingerprinting, loads through a job, similarity and substructure latency.

    .venv/bin/python -m benchmarks.molecular_search [--backends lite,server]
        [--moses-wheel DIR/molsets-0.3.1-py3-none-any.whl --large 100000] [--ivf 1024:64,...]

The sample (2,628 approved drugs) always runs. With ``--moses-wheel`` (get it with
``pip download molsets==0.3.1 --no-deps -d DIR``; it is read, not installed) a second set of
``--large`` MOSES molecules runs too. Brute-force top-10 with RDKit, and with FPSim2 if it is
installed, are timed on the same molecules for comparison. ``--ivf nlist:nprobe`` adds rows
for collections created with the BIN_IVF_FLAT index (server only). Prints Markdown.
"""

import argparse
import csv
import gzip
import heapq
import io
import os
import platform
import random
import statistics
import tempfile
import time
import zipfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
from rdkit import Chem, DataStructs, RDLogger
from rdkit.Chem import rdFingerprintGenerator

from benchmarks.harness import (
    BACKEND_NAMES,
    app_command,
    backend_env,
    milvus_server_pids,
    percentiles,
    process_tree,
    rss_mib,
    serving,
    wait_for_job,
)
from solutions.molecular_search.app import SAMPLE

SUBSTRUCTURE_TIMED_UP_TO = 100_000
SUBSTRUCTURES = [
    "c1ccccc1C(=O)[OX2H1]",
    "[#6]S(=O)(=O)N",
    "c1ccc2ncccc2c1",
    "C1CCNCC1",
    "[CX3](=O)[NX3;H2]",
    "FC(F)(F)c",
]


def sample_smiles() -> list[str]:
    with SAMPLE.open(newline="") as file:
        return [row["smiles"] for row in csv.DictReader(file)]


def moses_smiles(wheel: Path, count: int | None) -> list[str]:
    """``count`` molecules of the MOSES training set drawn at random, or all of it (None)."""
    with zipfile.ZipFile(wheel) as archive:
        text = gzip.decompress(archive.read("moses/dataset/data/train.csv.gz")).decode()
    rows = [line.split(",")[0] for line in text.splitlines()[1:] if line]
    return random.Random(0).sample(rows, count or len(rows))


def write_csv(path: Path, smiles: list[str]) -> Path:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["smiles", "name"])
        writer.writerows([s, f"m{i}"] for i, s in enumerate(smiles))
    return path


def fingerprinting_rate(smiles: list[str]) -> float:
    from solutions.molecular_search.chem import DEFAULT_SPEC, morgan_bits, parse_smiles

    start = time.perf_counter()
    for text in smiles:
        morgan_bits(parse_smiles(text), DEFAULT_SPEC)
    return len(smiles) / (time.perf_counter() - start)


def brute_force(smiles: list[str], queries: list[str]) -> tuple[dict[str, float], list[float]]:
    """Median ms per top-10 query (RDKit, and FPSim2 if installed); each query's 10th score."""
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    # Molecules are parsed one at a time and dropped: 1.58M RDKit molecules held at once
    # take more than 20 GB, their fingerprints about 0.5 GB.
    fingerprints = [
        generator.GetFingerprint(m) for s in smiles if (m := Chem.MolFromSmiles(s)) is not None
    ]
    times, tenth = [], []
    for query in queries:
        fp = generator.GetFingerprint(Chem.MolFromSmiles(query))
        start = time.perf_counter()
        scores = DataStructs.BulkTanimotoSimilarity(fp, fingerprints)
        best = heapq.nlargest(10, scores)
        times.append((time.perf_counter() - start) * 1000)
        tenth.append(best[-1])
    result = {"RDKit BulkTanimotoSimilarity": statistics.median(times)}
    try:
        from FPSim2 import FPSim2Engine
        from FPSim2.io import create_db_file
    except ImportError:
        return result, tenth
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "fp.h5")
        valid = [[s, i] for i, s in enumerate(smiles) if Chem.MolFromSmiles(s) is not None]
        create_db_file(
            valid,
            db,
            mol_format="smiles",
            fp_type="Morgan",
            fp_params={"radius": 2, "fpSize": 2048},
        )
        engine = FPSim2Engine(db)
        times = []
        for query in queries:
            start = time.perf_counter()
            engine.top_k(query, k=10, threshold=0.0, n_workers=1)
            times.append((time.perf_counter() - start) * 1000)
        result["FPSim2 top_k"] = statistics.median(times)
    return result, tenth


def wait_for_index(milvus_uri: str, collection: str) -> float:
    """Seconds until Milvus has indexed every row (an IVF index trains after the load ends;
    searches meanwhile scan the raw segments: correct, but not what is being measured)."""
    from pymilvus import MilvusClient

    milvus = MilvusClient(uri=milvus_uri)
    start = time.perf_counter()
    try:
        while True:
            index = milvus.describe_index(collection, milvus.list_indexes(collection)[0])
            # Not ``pending_index_rows``: after 1.58M rows Milvus 2.3 kept reporting 1.3M
            # pending (for ten minutes and more) with every row indexed.
            done = index.get("indexed_rows") == index.get("total_rows")
            if done and index.get("state") == "Finished":
                return time.perf_counter() - start
            time.sleep(1)
    finally:
        milvus.close()


def search_alone_ms(
    name: str,
    env: dict[str, str],
    smiles: list[str],
    queries: list[str],
    nprobe: int | None,
    tenth: list[float] | None = None,
) -> float | tuple[float, float]:
    """Median ms of the top-10 search alone, without HTTP, the app or the records: Milvus's
    own search on the server (the collection the app made); on Lite the app's in-memory scan
    over the same fingerprints, in this process. Given each query's true 10th score
    (``tenth``), also Milvus's own recall@10 (server only)."""
    from solutions.molecular_search.chem import PackedBits, morgan_bits, parse_smiles
    from solutions.molecular_search.similarity_scan import best

    probes = [morgan_bits(parse_smiles(q)) for q in queries]
    times = []
    if name == "lite":
        scan = PackedBits([morgan_bits(m) for s in smiles if (m := Chem.MolFromSmiles(s))], 256)
        ids = np.arange(len(scan), dtype=np.int64)
        for probe in probes:
            start = time.perf_counter()
            best(scan.tanimoto(probe), ids, 10)
            times.append((time.perf_counter() - start) * 1000)
        return statistics.median(times)
    from pymilvus import MilvusClient

    milvus = MilvusClient(uri=env["SEARCH_MILVUS_URI"])
    params = {"metric_type": "JACCARD", "params": {"nprobe": nprobe} if nprobe else {}}
    hits = 0
    try:
        for index, probe in enumerate(probes):
            start = time.perf_counter()
            found = milvus.search(
                "molecules__set",
                [probe],
                limit=10,
                search_params=params,
                consistency_level="Session",
            )
            times.append((time.perf_counter() - start) * 1000)
            if tenth is not None:  # JACCARD distance is 1 - Tanimoto, in float32
                hits += sum(1 - hit["distance"] >= tenth[index] - 1e-4 for hit in found[0])
    finally:
        milvus.close()
    if tenth is not None:
        return statistics.median(times), hits / (10 * len(probes))
    return statistics.median(times)


def measure(
    name: str,
    label: str,
    smiles: list[str],
    queries: list[str],
    tenth: list[float],
    options: dict[str, Any] | None = None,
    sweep: tuple[int, ...] = (),
) -> str:
    """One row of the table; for an IVF index, first a line per ``sweep`` nprobe: Milvus's
    own search time and recall@10 on the same collection."""
    with tempfile.TemporaryDirectory() as work, ExitStack() as stack:
        workdir = Path(work)
        env = stack.enter_context(backend_env(name, workdir))
        env.update({"SEARCH_LOAD_SAMPLE_DATA": "false", "SEARCH_MAX_UPLOAD_BYTES": str(2**30)})
        client, server = stack.enter_context(
            serving(app_command("solutions.molecular_search"), env)
        )
        data = write_csv(workdir / "set.csv", smiles).read_bytes()
        start = time.perf_counter()
        if options:
            created = client.post("/collections", json={"name": "set", "options": options})
            created.raise_for_status()
        response = client.post(
            "/collections/set/loads", files={"file": ("set.csv", io.BytesIO(data), "text/csv")}
        )
        response.raise_for_status()
        job = wait_for_job(client, response.json()["id"])
        rate = job["added"] / (time.perf_counter() - start)
        built = wait_for_index(env["SEARCH_MILVUS_URI"], "molecules__set") if options else 0.0
        similar, hits = [], 0
        for query, cutoff in zip(queries, tenth, strict=True):
            begin = time.perf_counter()
            response = client.post("/collections/set/similar", json={"smiles": query, "top_k": 10})
            similar.append((time.perf_counter() - begin) * 1000)
            response.raise_for_status()
            # recall@10 with ties: a result counts if it scores at least the true 10th score
            hits += sum(r["similarity"] >= cutoff - 1e-4 for r in response.json()["results"])
        substructure = []
        # Above 100,000 molecules not timed: a pattern the screen lets most molecules through
        # with no match (benzoic acid in MOSES) verifies each, ~110 µs apiece: minutes.
        for pattern in SUBSTRUCTURES * 3 if len(smiles) <= SUBSTRUCTURE_TIMED_UP_TO else ():
            begin = time.perf_counter()
            client.post(
                "/collections/set/substructure", json={"query": pattern, "limit": 100}
            ).raise_for_status()
            substructure.append((time.perf_counter() - begin) * 1000)
        s50, s95 = percentiles(similar)
        nprobe = int(options["nprobe"]) if options and "nprobe" in options else None
        alone = search_alone_ms(name, env, smiles, queries, nprobe)
        for other in sweep if options else ():
            took, found = search_alone_ms(name, env, smiles, queries, other, tenth)
            print(f"  nprobe {other}: Milvus search alone p50 {took:.1f} ms, recall@10 {found:.3f}")
        u50 = f"{percentiles(substructure)[0]:.1f} ms" if substructure else "-"
        recall = hits / (10 * len(queries))
        app_memory = rss_mib(process_tree(server.pid))
        milvus_memory = f"{rss_mib(milvus_server_pids()):.0f}" if name == "server" else "-"
        index = client.get("/collections/set").json()
        shown = index["index_type"] + (
            f" {options['nlist']}/{options['nprobe']} (built {built:.0f} s after the load)"
            if options and "nlist" in options
            else ""
        )
        return (
            f"| {BACKEND_NAMES[name]} | {shown} | {label} | {job['added']} | {rate:.0f}/s | "
            f"{s50:.1f} ms | {s95:.1f} ms | {alone:.1f} ms | {recall:.3f} | {u50} | "
            f"{app_memory:.0f} | {milvus_memory} |"
        )


def main() -> None:
    RDLogger.DisableLog("rdApp.*")  # the brute-force baselines parse without our log capture
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="lite,server")
    parser.add_argument("--moses-wheel", type=Path)
    parser.add_argument(
        "--large", default="100000", help="how many MOSES molecules, or 'all' (1,584,663)"
    )
    parser.add_argument("--ivf", default="", help="nlist:nprobe pairs, comma separated")
    parser.add_argument(
        "--nprobes", default="", help="for IVF rows: more nprobe values searched without the app"
    )
    args = parser.parse_args()
    sets = {"sample": sample_smiles()}
    if args.moses_wheel:
        large = moses_smiles(args.moses_wheel, None if args.large == "all" else int(args.large))
        sets[f"MOSES {len(large):,}"] = large
    queries = random.Random(1).sample(sets["sample"], 50)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores; python "
        f"{platform.python_version()}\n"
    )
    print(
        f"fingerprinting (parse + Morgan 2048): "
        f"{fingerprinting_rate(sets['sample'] * 4):.0f} molecules/s\n"
    )
    cutoffs = {}
    for label, smiles in sets.items():
        timings, cutoffs[label] = brute_force(smiles, queries)
        times = ", ".join(f"{k} {v:.1f} ms" for k, v in timings.items())
        print(f"brute-force top-10 on {label} ({len(smiles)}): {times}")
    print(
        "\n| backends | index (nlist/nprobe) | set | molecules | load through a job "
        "| similarity p50 | p95 | search alone p50 | recall@10 | substructure p50 "
        "| app RSS MiB | Milvus RSS MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    ivf = [pair.split(":") for pair in args.ivf.split(",") if pair]
    for label, smiles in sets.items():
        for name in args.backends.split(","):
            print(measure(name, label, smiles, queries, cutoffs[label]), flush=True)
            if name == "server":
                for nlist, nprobe in ivf:
                    options = {"index": "BIN_IVF_FLAT", "nlist": int(nlist), "nprobe": int(nprobe)}
                    sweep = tuple(int(n) for n in args.nprobes.split(",") if n)
                    row = measure(name, label, smiles, queries, cutoffs[label], options, sweep)
                    print(row, flush=True)


if __name__ == "__main__":
    main()
