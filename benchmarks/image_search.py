"""Reverse image search: encoder throughput, load through a job, search latency, near-duplicates.

    .venv/bin/python -m benchmarks.image_search [--backends lite,server] [--images 1000]

Needs scikit-image (in the test extra) for real photos. The generated set is random crops,
flips and colour shifts of those photos, saved as 640x480 JPEGs, so every file differs.
Prints Markdown; the numbers are measurements on the machine it runs on.
"""

import argparse
import os
import platform
import random
import shutil
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

from benchmarks.harness import BACKEND_NAMES, backend_env, percentiles, running_app, wait_for_job
from tests.imagery import ALTERATIONS, altered, encoded, photos

# The stages a load's job times (common/loading.py): "parse" is how long the encoding
# thread waited for decoded images, "store" runs on its own thread beside encoding.
STAGES = ("parse", "encode", "store", "flush")


def generated_set(folder: Path, count: int) -> list[Path]:
    rng = random.Random(0)
    pictures = list(photos().values())
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(count):
        picture = rng.choice(pictures)
        width, height = picture.size
        scale = rng.uniform(0.5, 1.0)
        w, h = int(width * scale), int(height * scale)
        x, y = rng.randint(0, width - w), rng.randint(0, height - h)
        variant = picture.crop((x, y, x + w, y + h)).resize((640, 480))
        if rng.random() < 0.5:
            variant = ImageOps.mirror(variant)
        variant = ImageEnhance.Color(variant).enhance(rng.uniform(0.5, 1.5))
        path = folder / f"{number:05d}.jpg"
        variant.save(path, "JPEG", quality=90)
        paths.append(path)
    return paths


def encoder_alone(paths: list[Path], backend: str) -> float:
    from common.encoders.efficientnet import EfficientNetLite0Encoder

    encoder = EfficientNetLite0Encoder(
        batch_size=32,
        backend=backend,  # type: ignore[arg-type]
        cache_dir=Path(tempfile.gettempdir()) / "bench-models",
    )
    images = [Image.open(p).convert("RGB") for p in paths[:256]]
    encoder.encode(images[:32])  # warm up
    start = time.perf_counter()
    encoder.encode(images)
    return len(images) / (time.perf_counter() - start)


def near_duplicates(client, workdir: Path) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    """Load photos with their six variants; (variants found, variants, unrelated found)."""
    root = workdir / "imports" / "variants"
    for seed, (name, picture) in enumerate(photos().items()):
        (root / name).mkdir(parents=True)
        (root / name / "original.png").write_bytes(encoded(picture))
        for how in ALTERATIONS:
            data = encoded(altered(picture, how, seed), "JPEG", quality=90)
            (root / name / f"{how}.jpg").write_bytes(data)
    job = client.post("/collections/variants/loads/path", json={"path": "variants"}).json()
    wait_for_job(client, job["id"])
    items = client.get("/collections/variants/items", params={"limit": 500}).json()
    family = {item["id"]: item["label"] for item in items}
    found = unrelated = expected = 0
    for item in items:
        if item["filename"].endswith("original.png"):
            body = client.get(f"/collections/variants/items/{item['id']}/duplicates").json()
            labels = [family[r["id"]] for r in body["results"]]
            found += sum(label == item["label"] for label in labels)
            unrelated += sum(label != item["label"] for label in labels)
            expected += len(ALTERATIONS)
    return found, expected, unrelated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="lite,server")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--searches", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = generated_set(Path(tmp) / "set", args.images)
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores; python "
            f"{platform.python_version()}; {args.images} JPEGs of 640x480\n"
        )
        rates = {backend: encoder_alone(paths, backend) for backend in ("onnx", "torch")}
        print(
            f"encoder alone, batch 32: ONNX Runtime {rates['onnx']:.0f} images/s, "
            f"torch {rates['torch']:.0f} images/s\n"
        )
        print(
            "| backends | load through a job | vs encoder alone | search p50 | search p95 | "
            "near-duplicates found | unrelated returned |"
        )
        print("|---|---|---|---|---|---|---|")
        stages: list[str] = []
        for name in args.backends.split(","):
            with tempfile.TemporaryDirectory() as work, ExitStack() as stack:
                workdir = Path(work)
                (workdir / "imports").mkdir()
                shutil.copytree(paths[0].parent, workdir / "imports" / "set")
                env = stack.enter_context(backend_env(name, workdir))
                env.update(
                    {
                        "SEARCH_DATA_ROOTS": str(workdir / "imports"),
                        "SEARCH_IMAGE_MODEL_DIR": str(Path(tempfile.gettempdir()) / "bench-models"),
                    }
                )
                client = stack.enter_context(running_app("solutions.image_search", env))
                start = time.perf_counter()
                response = client.post("/collections/set/loads/path", json={"path": "set"})
                response.raise_for_status()
                job = response.json()
                job = wait_for_job(client, job["id"])
                wall = time.perf_counter() - start
                rate = job["added"] / wall
                stages.append(
                    f"| {BACKEND_NAMES[name]} | {wall:.1f} | "
                    + " | ".join(f"{job['timings'].get(stage, 0):.1f}" for stage in STAGES)
                    + " |"
                )
                assert job["added"] == args.images, job
                queries = [p.read_bytes() for p in random.Random(2).sample(paths, args.searches)]
                latencies = []
                for data in queries:
                    begin = time.perf_counter()
                    client.post(
                        "/collections/set/search",
                        data={"top_k": "10"},
                        files={"file": ("q.jpg", data, "image/jpeg")},
                    ).raise_for_status()
                    latencies.append((time.perf_counter() - begin) * 1000)
                p50, p95 = percentiles(latencies)
                found, expected, unrelated = near_duplicates(client, workdir)
                print(
                    f"| {BACKEND_NAMES[name]} | {rate:.0f} images/s | "
                    f"{rate / rates['onnx']:.0%} | {p50:.1f} ms | {p95:.1f} ms | "
                    f"{found}/{expected} ({found / expected:.0%}) | {unrelated} |",
                    flush=True,
                )
        print(
            "\nWhere a load's time goes: seconds of each stage as the job records them (reading "
            "runs on its own thread, ahead of encoding and storing, so stages overlap)\n"
        )
        print("| backends | load, wall s | " + " | ".join(f"{s} s" for s in STAGES) + " |")
        print("|---|---|" + "---|" * len(STAGES))
        print("\n".join(stages))


if __name__ == "__main__":
    main()
