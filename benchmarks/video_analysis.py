"""Video analysis: ingest speed per stage, search latency per query kind, moment accuracy.

    .venv/bin/python -m benchmarks.video_analysis [--backends lite,server] [--seconds 60]

Makes one synthetic video per frame size (640x360 and 1280x720, 30 fps, H.264): a shot of
5 s per scikit-image photo, each drifting slowly so that frames differ. Loads them through
the app's job over HTTP and reports, from the job's own stage timings, how many seconds of
video each stage handles per second of wall time: once with frames and shots only, once
with faces and OCR too (the defaults). Then times searches by picture, by words, by a
person's name (the astronaut, enrolled from her photo), storyboards, who is in a video,
and copies (of a stored video, and of an uploaded 15 s excerpt), one at a time and 16 at
once; checks every photo's moment against where it really is, the astronaut's name against
her shot, and whether altered excerpts (borders cropped, resized, another frame rate,
encoded again) are found aligned to where they were cut from. Prints Markdown; the numbers are
measurements on the machine it runs on.
"""

import argparse
import asyncio
import os
import platform
import random
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.harness import BACKEND_NAMES, backend_env, percentiles, running_app, wait_for_job
from tests.imagery import encoded, photos
from tests.videos import Scene, copy_of, make_video

SIZES = {"640x360": (640, 360), "1280x720": (1280, 720)}
SHOT_SECONDS = 5
CONCURRENCY = 16
STAGES = ("decode", "shots", "encode", "tags", "thumbnails", "faces", "ocr", "store")
KINDS = (
    "picture",
    "words",
    "a person's name",
    "storyboard",
    "people in a video",
    "copies of a video",
    "copies of a clip",
)
# An excerpt: (start, length, border cropped, scale, frame rate).
EXCERPTS = 8
EXCERPT_SECONDS = 15


@dataclass(frozen=True)
class Excerpt:
    path: Path
    start: float
    end: float
    how: str


def excerpts(folder: Path, source: Path, seconds: int) -> list[Excerpt]:
    """Altered excerpts of ``source`` at random places, each altered differently."""
    rng = random.Random(7)
    made = []
    for index in range(EXCERPTS):
        length = rng.uniform(8, 20) if index else EXCERPT_SECONDS
        start = round(rng.uniform(0, seconds - length), 2)
        crop, scale, fps = (
            rng.choice([0.05, 0.08, 0.12]),
            rng.choice([0.5, 0.75]),
            rng.choice([15, 24, 30]),
        )
        path = copy_of(
            source,
            folder / f"excerpt-{index}.mp4",
            start=start,
            end=start + length,
            crop=crop,
            scale=scale,
            fps=fps,
            crf=32,
        )
        how = f"{crop:.0%} borders, x{scale}, {fps} fps"
        made.append(Excerpt(path, start, start + length, how))
    return made


def copies_accuracy(client: httpx.Client, found_in: list[Excerpt]) -> tuple[int, int]:
    """(excerpts found in both stored videos, aligned within 1 s at both ends, excerpts)."""
    right = 0
    for excerpt in found_in:
        files = {"file": (excerpt.path.name, excerpt.path.read_bytes())}
        body = client.post("/collections/frames/copies", files=files).json()
        aligned = [
            segment
            for result in body["results"]
            for segment in result["segments"]
            if abs(segment["start"] - excerpt.start) <= 1 and abs(segment["end"] - excerpt.end) <= 1
        ]
        right += len(aligned) == len(SIZES) == len(body["results"])
    return right, len(found_in)


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


def name_accuracy(client: httpx.Client, spans: dict[str, tuple[float, float]]) -> bool:
    """Enrol the astronaut from her photo; whether her name then finds the shot she is in,
    in both videos, within 1 s at both ends, and nothing else."""
    files = {"file": ("astronaut.png", encoded(photos()["astronaut"]), "image/png")}
    name = {"name": "Eileen Collins"}
    client.post("/collections/bench/people", data=name, files=files).raise_for_status()
    body = client.get("/collections/bench/moments/by-words", params={"q": "collins"}).json()
    start, end = spans["astronaut"]
    found = [m for result in body["results"] for m in result["moments"] if m["names"]]
    return len(found) == len(SIZES) and all(
        abs(m["start"] - start) <= 1 and abs(m["end"] - end) <= 1 for m in found
    )


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


async def timed(base: str, kind: str, count: int, concurrency: int, clip: bytes) -> list[float]:
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
                elif kind == "a person's name":
                    response = await client.get(
                        "/collections/bench/moments/by-words", params={"q": "collins"}
                    )
                elif kind == "people in a video":
                    video = videos[i % len(videos)]["id"]
                    response = await client.get(f"/collections/bench/videos/{video}/people")
                elif kind == "copies of a video":
                    video = videos[i % len(videos)]["id"]
                    response = await client.get(f"/collections/bench/videos/{video}/copies")
                elif kind == "copies of a clip":
                    response = await client.post(
                        "/collections/bench/copies", files={"file": ("clip.mp4", clip)}
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
    notes: list[str] = []
    for name in args.backends.split(","):
        with tempfile.TemporaryDirectory() as work, ExitStack() as stack:
            workdir = Path(work)
            spans = generated(workdir / "imports" / "set", args.seconds)
            cut = excerpts(workdir, workdir / "imports" / "set" / "640x360.mp4", args.seconds)
            env = stack.enter_context(backend_env(name, workdir))
            env.update(
                {
                    "SEARCH_DATA_ROOTS": str(workdir / "imports"),
                    "SEARCH_VIDEO_MODEL_DIR": str(Path(tempfile.gettempdir()) / "bench-models"),
                }
            )
            client = stack.enter_context(running_app("solutions.video_analysis", env))
            # "bench" reads on-screen text and faces (the default); "frames" only samples,
            # finds shots, encodes and labels: the cost of the two is the difference.
            plain = {"name": "frames", "options": {"ocr": False, "faces": False}}
            client.post("/collections", json=plain).raise_for_status()
            for collection, label in [(c, s) for c in ("frames", "bench") for s in SIZES]:
                run = ingest(client, collection, label, args.seconds)
                speed = {
                    stage: run["seconds"] / run["timings"][stage]
                    for stage in STAGES
                    if run["timings"].get(stage)
                }
                whole = run["seconds"] / run["wall"]
                per_minute = {
                    stage: 60 * run["timings"][stage] / run["seconds"]
                    for stage in ("faces", "ocr")
                    if run["timings"].get(stage)
                }
                kind = "faces + OCR" if collection == "bench" else "frames + shots"
                row = (BACKEND_NAMES[name], f"{label}, {kind}", whole, speed, per_minute)
                ingest_rows.append(row)
            right, total = accuracy(client, spans)
            copied, excerpts_made = copies_accuracy(client, cut)
            named = name_accuracy(client, spans)
            base = str(client.base_url)
            clip = cut[0].path.read_bytes()
            for kind in KINDS:
                # A clip query decodes and encodes 15 s of video: fewer of those.
                count = args.searches // 8 if kind == "copies of a clip" else args.searches
                alone = asyncio.run(timed(base, kind, max(4, count // 4), 1, clip))
                started = time.perf_counter()
                loaded = asyncio.run(timed(base, kind, count, CONCURRENCY, clip))
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
            notes.append(
                f"{BACKEND_NAMES[name]}: {right} of {total} photos found at their moment "
                "(start and end within 1 s) in both videos"
            )
            notes.append(
                f"{BACKEND_NAMES[name]}: the enrolled astronaut's name "
                + ("found" if named else "NOT found")
                + " at her shot (within 1 s) in both videos, and nowhere else"
            )
            notes.append(
                f"{BACKEND_NAMES[name]}: {copied} of {excerpts_made} altered excerpts found "
                "in both videos, and only there, aligned within 1 s at both ends"
            )

    print("Ingest, seconds of video per second of wall time (x real time):\n")
    header = " | ".join(STAGES)
    print(f"| backends | size | whole job | {header} | faces s per min | OCR s per min |")
    print("|---|---|---|" + "---|" * len(STAGES) + "---|---|")
    for backend, label, whole, speed, per_minute in ingest_rows:
        cells = " | ".join(f"{speed[s]:.0f}" if s in speed else "-" for s in STAGES)
        costs = " | ".join(
            f"{per_minute[s]:.1f}" if s in per_minute else "-" for s in ("faces", "ocr")
        )
        print(f"| {backend} | {label} | {whole:.1f} | {cells} | {costs} |")
    print("\nSearch latency, ms (p50 / p95), one client and 16 at once:\n")
    print("| backends | query | 1 client | 16 clients | QPS at 16 |")
    print("|---|---|---|---|---|")
    for backend, kind, alone, loaded, qps in search_rows:
        print(
            f"| {backend} | {kind} | {alone[0]:.0f} / {alone[1]:.0f} | "
            f"{loaded[0]:.0f} / {loaded[1]:.0f} | {qps:.0f} |"
        )
    print("\n" + "\n".join(notes))
    print()
    for excerpt in cut:
        print(f"excerpt {excerpt.start:.1f}-{excerpt.end:.1f} s: {excerpt.how}")


if __name__ == "__main__":
    main()
