"""Video analysis: ingest speed per stage, search latency per query kind, moment accuracy.

    .venv/bin/python -m benchmarks.video_analysis [--backends lite,server] [--seconds 60]

Makes one synthetic video per frame size (640x360 and 1280x720, 30 fps, H.264): a shot of
5 s per scikit-image photo, each drifting slowly so that frames differ. Loads them through
the app's job over HTTP and reports, from the job's own stage timings, how many seconds of
video each stage handles per second of wall time. Then times searches by picture, by words
and storyboards, one at a time and 16 at once, and checks every photo's moment against
where it really is. Prints Markdown; the numbers are measurements on the machine it runs on.
"""

import argparse
import asyncio
import os
import platform
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from benchmarks.harness import BACKEND_NAMES, backend_env, percentiles, running_app, wait_for_job
from tests.imagery import encoded, photos
from tests.videos import Scene, make_video

SIZES = {"640x360": (640, 360), "1280x720": (1280, 720)}
SHOT_SECONDS = 5
CONCURRENCY = 16
STAGES = ("decode", "shots", "encode", "tags", "thumbnails", "ocr", "store")


def generated(folder: Path, seconds: int) -> dict[str, tuple[float, float]]:
    """Write the videos (``<size>.mp4``); where each photo is on screen (the same in both)."""
    pictures = list(photos().items())
    script = [pictures[i % len(pictures)] for i in range(seconds // SHOT_SECONDS)]
    spans = {}
    for index, (name, _) in enumerate(script):
        spans.setdefault(name, (index * SHOT_SECONDS, (index + 1) * SHOT_SECONDS))
    folder.mkdir(parents=True)
    for label, size in SIZES.items():
        scenes = [Scene(picture, SHOT_SECONDS) for _, picture in script]
        make_video(folder / f"{label}.mp4", scenes, size=size, fps=30)
    return spans


def ingest(client: httpx.Client, collection: str, name: str, seconds: float) -> dict[str, Any]:
    started = time.perf_counter()
    path = {"path": f"set/{name}.mp4"}
    job = client.post(f"/collections/{collection}/loads/path", json=path).json()
    job = wait_for_job(client, job["id"])
    wall = time.perf_counter() - started
    assert job["status"] == "succeeded" and job["added"] == 1, job
    return {"wall": wall, "seconds": seconds, "timings": job["timings"]}


def accuracy(client: httpx.Client, spans: dict[str, tuple[float, float]]) -> tuple[int, int]:
    """(photos whose best moment is within 1 s of the truth in both videos, photos)."""
    right = 0
    for name, (start, end) in spans.items():
        files = {"file": ("q.png", encoded(photos()[name]))}
        body = client.post("/collections/bench/moments/by-image", files=files).json()
        found = [max(result["moments"], key=lambda m: m["score"]) for result in body["results"]]
        right += len(found) == len(SIZES) and all(
            abs(m["start"] - start) <= 1 and abs(m["end"] - end) <= 1 for m in found
        )
    return right, len(spans)


async def timed(base: str, kind: str, count: int, concurrency: int) -> list[float]:
    picture = encoded(photos()["coffee"])
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        videos = (await client.get("/collections/bench/videos")).json()["videos"]

        async def one(i: int) -> None:
            async with gate:
                started = time.perf_counter()
                if kind == "picture":
                    response = await client.post(
                        "/collections/bench/moments/by-image", files={"file": ("q.png", picture)}
                    )
                elif kind == "words":
                    response = await client.get(
                        "/collections/bench/moments/by-words", params={"q": "espresso"}
                    )
                else:
                    video = videos[i % len(videos)]["id"]
                    response = await client.get(f"/collections/bench/videos/{video}")
                response.raise_for_status()
                latencies.append((time.perf_counter() - started) * 1000)

        await asyncio.gather(*(one(i) for i in range(count)))
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="lite,server")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--searches", type=int, default=200)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores; python "
        f"{platform.python_version()}; one {args.seconds} s video per size, 30 fps, a shot "
        f"every {SHOT_SECONDS} s, a frame sampled every second\n"
    )
    ingest_rows, search_rows = [], []
    for name in args.backends.split(","):
        with tempfile.TemporaryDirectory() as work, ExitStack() as stack:
            workdir = Path(work)
            spans = generated(workdir / "imports" / "set", args.seconds)
            env = stack.enter_context(backend_env(name, workdir))
            env.update(
                {
                    "SEARCH_DATA_ROOTS": str(workdir / "imports"),
                    "SEARCH_MEDIA_DIR": str(workdir / "media"),
                    "SEARCH_UPLOAD_DIR": str(workdir / "uploads"),
                    "SEARCH_VIDEO_MODEL_DIR": str(Path(tempfile.gettempdir()) / "bench-models"),
                }
            )
            client = stack.enter_context(running_app("solutions.video_analysis", env))
            # "bench" reads on-screen text (the default); "frames" only samples, finds shots,
            # encodes and labels: the cost of OCR is the difference.
            plain = {"name": "frames", "options": {"ocr": False}}
            client.post("/collections", json=plain).raise_for_status()
            for collection, label in [(c, s) for c in ("frames", "bench") for s in SIZES]:
                run = ingest(client, collection, label, args.seconds)
                speed = {
                    stage: run["seconds"] / run["timings"][stage]
                    for stage in STAGES
                    if run["timings"].get(stage)
                }
                whole = run["seconds"] / run["wall"]
                ocr_minute = 60 * run["timings"].get("ocr", 0.0) / run["seconds"]
                ocr = "with OCR" if collection == "bench" else "no OCR"
                row = (BACKEND_NAMES[name], f"{label}, {ocr}", whole, speed, ocr_minute)
                ingest_rows.append(row)
            right, total = accuracy(client, spans)
            base = str(client.base_url)
            for kind in ("picture", "words", "storyboard"):
                alone = asyncio.run(timed(base, kind, args.searches // 4, 1))
                started = time.perf_counter()
                loaded = asyncio.run(timed(base, kind, args.searches, CONCURRENCY))
                wall = time.perf_counter() - started
                search_rows.append(
                    (
                        BACKEND_NAMES[name],
                        kind,
                        percentiles(alone),
                        percentiles(loaded),
                        len(loaded) / max(wall, 1e-9),
                    )
                )
            search_rows.append((BACKEND_NAMES[name], "accuracy", right, total, None))

    print("Ingest, seconds of video per second of wall time (x real time):\n")
    print("| backends | size | whole job | " + " | ".join(STAGES) + " | OCR s per min |")
    print("|---|---|---|" + "---|" * len(STAGES) + "---|")
    for backend, label, whole, speed, ocr_minute in ingest_rows:
        cells = " | ".join(f"{speed[s]:.0f}" if s in speed else "-" for s in STAGES)
        print(f"| {backend} | {label} | {whole:.1f} | {cells} | {ocr_minute:.1f} |")
    print("\nSearch latency, ms (p50 / p95), one client and 16 at once:\n")
    print("| backends | query | 1 client | 16 clients | QPS at 16 |")
    print("|---|---|---|---|---|")
    for backend, kind, alone, loaded, qps in search_rows:
        if kind == "accuracy":
            continue
        print(
            f"| {backend} | {kind} | {alone[0]:.0f} / {alone[1]:.0f} | "
            f"{loaded[0]:.0f} / {loaded[1]:.0f} | {qps:.0f} |"
        )
    print()
    for backend, kind, right, total, _ in search_rows:
        if kind == "accuracy":
            print(
                f"{backend}: {right} of {total} photos found at their moment (start and end "
                f"within 1 s) in both videos"
            )


if __name__ == "__main__":
    main()
