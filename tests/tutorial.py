"""Run a README like a reader would, and check that it shows what really happens.

A tutorial is a Markdown file. Each ```` ```bash ```` block is a command block; the first
other fenced block after it (before the next command block or heading) is what it is shown
to print. The runner works in a fresh copy of the repository (``data/`` is new, ``.venv``
is the repository's), starts the demo the way the tutorial says (``./scripts/demo``,
or before the first command that talks to it) on a free port, waits for the samples to load,
then runs the blocks in order with ``bash`` and compares each shown output with the real one:

* JSON: the same field names and values; ``"…"`` stands for any value, ``"…": "…"`` for
  further fields, a final ``"…"`` for further list elements, and a string ending in ``…``
  for any string that starts the same; numbers are equal to the precision shown;
* values that differ on every run are compared by their shape: job ids (32 hex digits),
  request ids, timestamps and timings. A job id shown in one output stands, in the commands
  after it, for the id of the job the run really made;
* ``HTTP/1.1 …`` status lines exactly, the headers shown, then the body; Server-Sent Events
  event by event; other text line by line, ``…`` matching anything within a line. The lines
  shown for ``./scripts/demo`` must each appear in the server's log, in any order.

A fenced block with ``title="path"`` in its info string is a file the reader writes: the
runner writes it into the copy when it gets there (``after="line"``, or ``after='line'``
for a line with double quotes: the block is added after that line of the file instead). It
is never a command's output. A tutorial may not edit ``pyproject.toml`` before it starts the
demo, which would re-install the ``.venv``.

``localhost:8000`` and ``127.0.0.1:8000`` in commands and outputs stand for the demo's real
address. A command block preceded by ``<!-- not run: why -->`` is skipped, and counted with
its reason. A block of plain GET requests is retried for a while if its output does not match
yet (a job may still be running).

``python -m tests.tutorial README.md --show`` prints every block's real output, to write
or mend a tutorial from a real run.
"""

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from tests.backends import reserve_ports

ROOT = Path(__file__).resolve().parents[1]
ELLIPSIS = "…"
SHOWN_PORT = "8000"
START_TIMEOUT = 600
RETRY_SECONDS = 30
COMMAND_TIMEOUT = 300

_FENCE = re.compile(r"^```(\S*)([^\n]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_TITLE = re.compile(r'\btitle="([^"]+)"')
_AFTER = re.compile(r"""\bafter=(?:"([^"]*)"|'([^']*)')""")
_SKIP = re.compile(r"<!--\s*not run:\s*((?:(?!-->).)+?)\s*-->\s*$", re.DOTALL)
_HEADING = re.compile(r"^#{1,6} ", re.MULTILINE)
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
_REQUEST_ID = re.compile(r"^(?=[0-9]*[a-f])[0-9a-f]{16}$")
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?$")
# What varies from run to run: job ids, request ids (hex with a letter), timestamps.
_VOLATILE = re.compile(
    r"…|\b[0-9a-f]{32}\b|\b(?=[0-9]*[a-f])[0-9a-f]{16}\b"
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?"
)
_DEMO = "./scripts/demo"
_ADDRESS = re.compile(r"(localhost|127\.0\.0\.1):" + SHOWN_PORT + r"\b")


@dataclass(frozen=True)
class FileBlock:
    """A file the tutorial has the reader write: all of it, or lines added after a line."""

    path: str
    text: str
    after: str | None = None


@dataclass
class Step:
    """One command block and what the tutorial shows it printing (``None``: not shown), or
    one file the reader writes (``file``)."""

    line: int
    command: str
    shown: str | None
    skip: str | None = None
    file: FileBlock | None = None


@dataclass
class Report:
    path: Path
    ran: int = 0
    written: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _file_block(fence: re.Match[str]) -> FileBlock | None:
    title = _TITLE.search(fence.group(2))
    if title is None:
        return None
    after = _AFTER.search(fence.group(2))
    return FileBlock(title.group(1), fence.group(3), after and (after.group(1) or after.group(2)))


def steps(markdown: str) -> list[Step]:
    """The command blocks and file blocks of a tutorial, in order (see the module docstring)."""
    found: list[Step] = []
    fences = list(_FENCE.finditer(markdown))
    for index, fence in enumerate(fences):
        line = markdown.count("\n", 0, fence.start()) + 1
        file = _file_block(fence)
        if file is not None:
            found.append(Step(line=line, command="", shown=None, file=file))
            continue
        if fence.group(1) != "bash":
            continue
        before = markdown[: fence.start()].rstrip()
        skip = _SKIP.search(before[-500:])
        shown = None
        following = fences[index + 1] if index + 1 < len(fences) else None
        if following and following.group(1) != "bash" and _file_block(following) is None:
            between = markdown[fence.end() : following.start()]
            if not _HEADING.search(between) and not _SKIP.search(between):
                shown = following.group(3)
        found.append(
            Step(
                line=line,
                command=fence.group(3),
                shown=shown,
                skip=skip.group(1) if skip else None,
            )
        )
    return found


# --- comparing what is shown with what happened --------------------------------------------


class Ids:
    """Job ids shown in the tutorial, and the ids the run really produced for them."""

    def __init__(self) -> None:
        self.real: dict[str, str] = {}

    def match(self, shown: str, actual: str) -> bool:
        return self.real.setdefault(shown, actual) == actual

    def copy(self) -> "Ids":
        copied = Ids()
        copied.real = dict(self.real)
        return copied

    def substitute(self, command: str) -> str:
        for shown, actual in self.real.items():
            command = command.replace(shown, actual)
        return command


def _as_json(text: str, *, shown: bool = False) -> list[Any] | None:
    """The JSON values in ``text`` (a tutorial's ``…`` marks made valid), or None if not JSON.

    Numbers a tutorial shows are read as ``Decimal``, so that ``1.0`` keeps its one decimal.
    """
    text = re.sub(r"{\s*…\s*}", '{"…": "…"}', text)
    text = re.sub(r",\s*…\s*}", ', "…": "…"}', text)
    text = re.sub(r",\s*…\s*]", ', "…"]', text)
    text = re.sub(r":\s*…(\s*[,}])", r': "…"\1', text)
    decoder = json.JSONDecoder(parse_float=Decimal) if shown else json.JSONDecoder()
    values: list[Any] = []
    position = 0
    text = text.strip()
    while position < len(text):
        try:
            value, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            return None
        values.append(value)
        while position < len(text) and text[position].isspace():
            position += 1
    return values or None


def compare_json(shown: Any, actual: Any, ids: Ids, where: str = "") -> list[str]:
    """Where ``actual`` differs from ``shown`` (empty: it is what the tutorial shows)."""
    here = where or "the output"
    if shown == ELLIPSIS:
        return []
    if isinstance(shown, dict):
        if not isinstance(actual, dict):
            return [f"{here}: shown an object, got {actual!r}"]
        open_ended = shown.get(ELLIPSIS) == ELLIPSIS
        keys = [key for key in shown if key != ELLIPSIS]
        problems = [f"{here}: no field {key!r}" for key in keys if key not in actual]
        if not open_ended:
            extra = [key for key in actual if key not in shown]
            problems += [f"{here}: field {key!r} is not shown" for key in extra]
        for key in keys:
            if key in actual:
                if key == "timings" and isinstance(actual[key], dict):
                    if set(actual[key]) != set(shown[key]):
                        problems.append(f"{here}.timings: stages {sorted(actual[key])}")
                    continue
                problems += compare_json(shown[key], actual[key], ids, f"{here}.{key}")
        return problems
    if isinstance(shown, list):
        if not isinstance(actual, list):
            return [f"{here}: shown a list, got {actual!r}"]
        if shown and shown[-1] == ELLIPSIS:
            shown = shown[:-1]
            if len(actual) < len(shown):
                return [f"{here}: {len(actual)} elements, shown at least {len(shown)}"]
            actual = actual[: len(shown)]
        elif len(actual) != len(shown):
            return [f"{here}: {len(actual)} elements, shown {len(shown)}"]
        return [
            problem
            for index, (s, a) in enumerate(zip(shown, actual, strict=True))
            for problem in compare_json(s, a, ids, f"{here}[{index}]")
        ]
    if isinstance(shown, str):
        return [] if compare_text(shown, actual, ids) else [f"{here}: {actual!r}, shown {shown!r}"]
    if isinstance(shown, bool) or shown is None:
        return [] if shown is actual else [f"{here}: {actual!r}, shown {shown!r}"]
    if isinstance(shown, int | Decimal):
        if isinstance(actual, bool) or not isinstance(actual, int | float):
            return [f"{here}: {actual!r}, shown {shown!r}"]
        if isinstance(shown, int):
            return [] if shown == actual else [f"{here}: {actual!r}, shown {shown!r}"]
        # Equal to the precision shown: 0.7369 stands for 0.73685 up to 0.73695. But 1.0 is
        # how Python writes a whole number, exactly: a similarity of 1.0 is not 0.96.
        decimals = max(0, -int(shown.as_tuple().exponent))
        if shown == shown.to_integral_value() and decimals == 1:
            decimals = 12
        close = abs(Decimal(repr(actual)) - shown) <= Decimal(5) / 10 ** (decimals + 1)
        return [] if close else [f"{here}: {actual!r}, shown {shown}"]
    return [f"{here}: cannot compare {shown!r}"]


def compare_text(shown: str, actual: Any, ids: Ids) -> bool:
    """One value or line: equal, or equal but for ``…`` and values compared by their shape."""
    if not isinstance(actual, str):
        return False
    if shown == actual:
        return True
    pattern: list[str] = []
    job_ids: list[str] = []
    position = 0
    for token in _VOLATILE.finditer(shown):
        pattern.append(re.escape(shown[position : token.start()]))
        text = token.group()
        if text == ELLIPSIS:
            pattern.append(".*?")
        elif _JOB_ID.fullmatch(text):
            pattern.append("([0-9a-f]{32})")
            job_ids.append(text)
        elif _REQUEST_ID.fullmatch(text):
            pattern.append("[0-9a-f]{16}")
        else:
            pattern.append(_TIMESTAMP.pattern.strip("^$"))
        position = token.end()
    pattern.append(re.escape(shown[position:]))
    matched = re.fullmatch("".join(pattern), actual, flags=re.DOTALL)
    if matched is None:
        return False
    return all(ids.match(s, a) for s, a in zip(job_ids, matched.groups(), strict=True))


def compare_output(shown: str, actual: str, ids: Ids) -> list[str]:
    shown = shown.strip("\n")
    actual = actual.replace("\r\n", "\n").strip("\n")
    if shown.startswith("HTTP/"):
        return _compare_http(shown, actual, ids)
    if shown.startswith("event:"):
        return _compare_events(shown, actual, ids)
    expected = _as_json(shown, shown=True)
    if expected is not None:
        real = _as_json(actual)
        if real is None:
            return [f"shown JSON, got: {actual[:300]!r}"]
        if len(real) != len(expected):
            return [f"{len(real)} JSON values printed, shown {len(expected)}"]
        return [
            problem
            for index, (s, a) in enumerate(zip(expected, real, strict=True))
            for problem in compare_json(s, a, ids, f"value {index + 1}" if len(real) > 1 else "")
        ]
    shown_lines, actual_lines = shown.splitlines(), actual.splitlines()
    if len(shown_lines) != len(actual_lines):
        return [f"{len(actual_lines)} lines printed, shown {len(shown_lines)}:\n{actual}"]
    return [
        f"line {n}: {a!r}, shown {s!r}"
        for n, (s, a) in enumerate(zip(shown_lines, actual_lines, strict=True), 1)
        if not compare_text(s, a, ids)
    ]


def _compare_http(shown: str, actual: str, ids: Ids) -> list[str]:
    shown_head, _, shown_body = shown.partition("\n\n")
    actual_head, _, actual_body = actual.partition("\n\n")
    shown_lines, actual_lines = shown_head.splitlines(), actual_head.splitlines()
    problems = []
    if not actual_lines or actual_lines[0].strip() != shown_lines[0].strip():
        problems.append(
            f"status {actual_lines[0] if actual_lines else actual!r}, shown {shown_lines[0]!r}"
        )
    headers = {}
    for line in actual_lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    for line in shown_lines[1:]:
        name, _, value = line.partition(":")
        real = headers.get(name.strip().lower())
        if real is None:
            problems.append(f"no header {name.strip()!r}")
        elif not compare_text(value.strip(), real, ids):
            problems.append(f"header {name.strip()}: {real!r}, shown {value.strip()!r}")
    if shown_body.strip():
        problems += compare_output(shown_body, actual_body, ids)
    return problems


def _events(text: str) -> list[tuple[str, str]]:
    found, event = [], "message"
    for line in text.splitlines():
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            found.append((event, line.split(":", 1)[1].strip()))
    return found


def _compare_events(shown: str, actual: str, ids: Ids) -> list[str]:
    expected, real = _events(shown), _events(actual)
    if [e for e, _ in expected] != [e for e, _ in real]:
        return [f"events {[e for e, _ in real]}, shown {[e for e, _ in expected]}"]
    problems = []
    for (_, data), (_, real_data) in zip(expected, real, strict=True):
        problems += compare_output(data, real_data, ids)
    return problems


# --- running ---------------------------------------------------------------------------------


class Demo:
    """The demo, started as the tutorial says (or by ``command``), in a copy of the repository,
    on a free port; ``start`` returns once every app's jobs have ended."""

    def __init__(self, workdir: Path, command: str = _DEMO) -> None:
        self.workdir = workdir
        self.command = command
        self.port = str(reserve_ports(1)[0])
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir.parent / "demo.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> None:
        project = (self.workdir / "pyproject.toml").read_bytes()
        if self.command == _DEMO and project != (ROOT / "pyproject.toml").read_bytes():
            # scripts/install would re-install the repository's .venv from this copy.
            raise AssertionError("the tutorial edits pyproject.toml before it starts the demo")
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                ["bash", "-c", self.command],
                cwd=self.workdir,
                env=reader_env(self.port),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not self._samples_loaded():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the demo did not start:\n{self.log()[-3000:]}")
            time.sleep(0.5)

    def _samples_loaded(self) -> bool:
        try:
            apps = httpx.get(self.url + "apps", timeout=5).json()
            for app in apps:
                jobs = httpx.get(f"{self.url}{app['api']}jobs", timeout=5).json()
                if any(job["status"] in ("queued", "running") for job in jobs):
                    return False
        except httpx.HTTPError:
            return False
        return True

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def as_shown(self, text: str) -> str:
        """``text`` with the demo's real address written as a tutorial shows it."""
        return re.sub(rf"(localhost|127\.0\.0\.1):{self.port}\b", rf"\g<1>:{SHOWN_PORT}", text)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def reader_env(port: str) -> dict[str, str]:
    """A reader's environment: none of the settings of whoever runs the tests, but the port."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SEARCH_")}
    env["SEARCH_PORT"] = port
    return env


@contextmanager
def repository_copy() -> Iterator[Path]:
    """A fresh copy of the repository's files (those git tracks or would), with no ``data/``
    yet; ``.venv`` and ``.cache`` (installed packages, server binaries) link to the real ones.
    What a tutorial writes stays in the copy."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    with tempfile.TemporaryDirectory(prefix="tutorial-") as parent:
        workdir = Path(parent) / "repo"
        for name in filter(None, listed.split("\0")):
            if (ROOT / name).is_file():
                (workdir / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, workdir / name)
        for linked in (".venv", ".cache"):
            (ROOT / linked).mkdir(exist_ok=True)
            (workdir / linked).symlink_to(ROOT / linked)
        yield workdir


def write_file(workdir: Path, block: FileBlock) -> list[str]:
    """Write a file block into ``workdir`` as the reader would; what went wrong, if anything."""
    if Path(block.path).is_absolute() or ".." in Path(block.path).parts:
        return [f"{block.path}: not a path inside the repository"]
    target = workdir / block.path
    target.parent.mkdir(parents=True, exist_ok=True)
    text = block.text
    if block.after is not None:
        lines = target.read_text().splitlines(keepends=True) if target.exists() else []
        where = [i for i, line in enumerate(lines) if line.rstrip("\n") == block.after]
        if not where:
            return [f"{block.path}: no line {block.after!r} to add after"]
        text = "".join(lines[: where[0] + 1]) + block.text + "".join(lines[where[0] + 1 :])
    target.write_text(text)
    return []


# curl options that only read: a block made of nothing else can be sent again.
_READ_ONLY = {"-s", "-S", "-sS", "-N", "-i", "-L", "-D", "-o", "-w", "--silent", "--no-buffer"}
_WITH_VALUE = {"-D", "-o", "-w"}


def _only_gets(command: str) -> bool:
    """Is every command of the block a curl GET (so that retrying it changes nothing)?"""
    for line in command.replace("\\\n", " ").splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:  # not a simple command line (a here-document, say)
            return False
        if not words:
            continue
        if words[0] != "curl":
            return False
        value_next = False
        for word in words[1:]:
            if value_next:
                value_next = False
            elif word.startswith("-"):
                if word not in _READ_ONLY:
                    return False
                value_next = word in _WITH_VALUE
    return True


def run_tutorial(path: Path, *, show: bool = False) -> Report:
    report = Report(path)
    markdown = path.read_text()
    ids = Ids()
    subprocess.run([ROOT / "scripts" / "install", "qa,image,molecules"], check=True)
    with repository_copy() as workdir:
        demo = Demo(workdir)
        try:
            for step in steps(markdown):
                if step.file is not None:
                    where = f"{path.relative_to(ROOT)}:{step.line}"
                    report.written += 1
                    report.problems += [f"{where}: {p}" for p in write_file(workdir, step.file)]
                    continue
                if step.skip is not None:
                    report.skipped.append((step.line, step.skip))
                    continue
                report.ran += 1
                where = f"{path.relative_to(ROOT)}:{step.line}"
                if step.command.strip() == _DEMO:
                    demo.start()
                    if show:
                        print(f"--- {where}\n{demo.log()}")
                    report.problems += _check_log(where, step.shown, demo.as_shown(demo.log()))
                    continue
                if demo.process is None and _ADDRESS.search(step.command):
                    demo.start()
                command = _ADDRESS.sub(rf"\g<1>:{demo.port}", ids.substitute(step.command))
                problems = _run_step(step, command, demo, ids, workdir, show, where)
                report.problems += [f"{where}: {problem}" for problem in problems]
        finally:
            demo.stop()
    return report


def _run_step(
    step: Step, command: str, demo: Demo, ids: Ids, workdir: Path, show: bool, where: str
) -> list[str]:
    deadline = time.monotonic() + (RETRY_SECONDS if _only_gets(step.command) else 0)
    while True:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", command],
            cwd=workdir,
            capture_output=True,
            timeout=COMMAND_TIMEOUT,
            env=reader_env(demo.port),
        )
        output = demo.as_shown(done.stdout.decode(errors="replace"))
        if done.returncode != 0:
            problems = [f"exit status {done.returncode}: {done.stderr.decode()[-1500:]}"]
        elif step.shown is None:
            problems = []
        else:
            trial = ids.copy()  # an attempt that does not match must not pair up job ids
            problems = compare_output(step.shown, output, trial)
            if not problems:
                ids.real = trial.real
        if not problems or time.monotonic() > deadline:
            if show:
                print(f"--- {where}\n{output}")
            return problems
        time.sleep(0.5)


def _check_log(where: str, shown: str | None, log: str) -> list[str]:
    if shown is None:
        return []
    lines = [re.sub(r"^\S+ \S+ ", "", line) for line in log.splitlines()]  # drop the date
    ids = Ids()
    return [
        f"{where}: the server never logged {wanted!r}"
        for wanted in shown.strip().splitlines()
        if not any(compare_text(f"…{wanted.strip()}…", line, ids) for line in lines)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("readme", type=Path, nargs="+")
    parser.add_argument("--show", action="store_true", help="print every block's real output")
    args = parser.parse_args()
    failed = False
    for readme in args.readme:
        report = run_tutorial(readme.resolve(), show=args.show)
        print(f"{readme}: {report.ran} blocks run, {len(report.skipped)} not run")
        for problem in report.problems:
            print(f"  {problem}")
        failed = failed or bool(report.problems)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
