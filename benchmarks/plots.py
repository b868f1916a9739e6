"""QPS and p95 latency against concurrency, drawn from the benchmarks' JSON rows.

    .venv/bin/python -m benchmarks.plots

Reads ``results/concurrency.json`` (``benchmarks.concurrency --json``) and
``results/frameworks.json`` (``benchmarks.frameworks --json``), whichever exist, and writes
a PNG next to each: one figure per query or route, one line per configuration, QPS on the
left and p95 on the right, concurrency on a log scale. Needs the bench extra (matplotlib).
"""

import json
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no screen
import matplotlib.pyplot as plt  # after choosing the backend

RESULTS = Path(__file__).parent / "results"
BACKENDS = {"lite": "Lite + SQLite", "server": "server + MySQL"}


def name(key: str, value: str) -> str:
    if key == "backends":
        return BACKENDS.get(value, value)
    return f"batching {value}" if key == "batching" else value


def series(rows: list[dict], panel: str, line: tuple[str, ...]) -> dict[str, dict[str, list]]:
    """{panel value: {line label: rows sorted by concurrency}} of the rows with a QPS."""
    grouped: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if "qps" not in row:
            continue
        label = ", ".join(name(key, row[key]) for key in line if row[key] != "n/a")
        grouped[row[panel]][label].append(row)
    for lines in grouped.values():
        for points in lines.values():
            points.sort(key=lambda row: row["concurrency"])
    return grouped


def draw(rows: list[dict], panel: str, line: tuple[str, ...], title: str, out: Path) -> None:
    grouped = series(rows, panel, line)
    figure, axes = plt.subplots(len(grouped), 2, figsize=(16, 3.6 * len(grouped)), squeeze=False)
    for (name, lines), (qps, p95) in zip(grouped.items(), axes, strict=True):
        for label, points in lines.items():
            levels = [row["concurrency"] for row in points]
            qps.plot(levels, [row["qps"] for row in points], marker="o", label=label)
            p95.plot(levels, [row["p95"] for row in points], marker="o", label=label)
        qps.set_title(f"{name}: requests per second")
        p95.set_title(f"{name}: p95 latency (ms)")
        for axis in (qps, p95):
            axis.set_xscale("log", base=2)
            axis.set_xticks(levels, [str(level) for level in levels])
            axis.set_xlabel("concurrent clients")
            axis.grid(alpha=0.3)
        qps.set_ylim(bottom=0)
        p95.set_ylim(bottom=0)
        p95.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.02, 0.5))
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(out, dpi=90)
    plt.close(figure)
    print(f"wrote {out}")


# (results file, what a panel shows, what tells lines apart, title), one figure each
FIGURES = (
    (
        "concurrency",
        "query",
        ("backends", "batching"),
        "Queries under concurrent load (benchmarks/concurrency.py)",
    ),
    (
        "frameworks",
        "route",
        ("backends", "server"),
        "FastAPI on uvicorn and Flask on gunicorn, same QA handlers (benchmarks/frameworks.py)",
    ),
)


def main() -> None:
    for stem, panel, line, title in FIGURES:
        rows = RESULTS / f"{stem}.json"
        if rows.exists():
            draw(json.loads(rows.read_text()), panel, line, title, RESULTS / f"{stem}.png")


if __name__ == "__main__":
    main()
