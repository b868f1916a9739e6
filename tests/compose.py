"""Read the compose stacks and the Dockerfile the way Docker would, for the tests.

Only what these files use is supported, and anything else is refused rather than guessed:
compose's ``${VAR}`` / ``${VAR:-default}`` / ``${VAR-default}`` interpolation, and the
Dockerfile instructions ``ARG ENV WORKDIR COPY RUN USER EXPOSE VOLUME HEALTHCHECK CMD``.
"""

import json
import re
import shlex
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
STACKS = sorted(DOCKER.glob("*/compose.yaml"))
SCHEMA = Path(__file__).parent / "data" / "compose-spec" / "compose-spec.json"

_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?-)(?P<default>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<invalid>))"
)


def load_raw(compose_file: Path) -> dict[str, Any]:
    """The compose file as written, ``${...}`` strings included."""
    document = yaml.safe_load(compose_file.read_text())
    assert isinstance(document, dict), compose_file
    return document


def variables(value: Any) -> set[str]:
    """The names of the variables a compose document interpolates."""
    if isinstance(value, dict):
        return set().union(*(variables(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(variables(v) for v in value))
    if isinstance(value, str):
        found = set()
        for match in _INTERPOLATION.finditer(value):
            if match["invalid"] is not None:
                raise ValueError(f"unsupported interpolation in {value!r}")
            if match["escaped"] is None:
                found.add(match["braced"] or match["named"])
        return found
    return set()


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """What compose makes of a document's values in environment ``env`` (keys are kept)."""
    if isinstance(value, dict):
        return {key: interpolate(v, env) for key, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match["invalid"] is not None:
            raise ValueError(f"unsupported interpolation in {value!r}")
        if match["escaped"] is not None:
            return "$"
        name = match["braced"] or match["named"]
        current = env.get(name)
        if match["operator"] == ":-" and not current:
            return match["default"]
        if match["operator"] == "-" and current is None:
            return match["default"]
        return current or ""

    return _INTERPOLATION.sub(substitute, value)


def parse_duration(text: str) -> float:
    """Seconds in a compose duration such as ``1m30s`` or ``500ms``."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a duration: {text!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


# ---------------------------------------------------------------------------
# The Dockerfile.
# ---------------------------------------------------------------------------


@dataclass
class Copy:
    sources: list[str]
    destination: str


@dataclass
class Dockerfile:
    """The instructions of one build of ``docker/Dockerfile``, build arguments expanded."""

    args: dict[str, str]
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    """Every ``ENV``, in order: what the container starts with."""
    build_env: dict[str, str] = field(default_factory=dict)
    """The ``ENV`` set before the first ``RUN``: what the install steps run with."""
    copies: list[Copy] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    expose: list[int] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    user: str | None = None
    healthcheck: list[str] = field(default_factory=list)
    healthcheck_options: dict[str, str] = field(default_factory=dict)
    cmd: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path, build_args: Mapping[str, str]) -> "Dockerfile":
        text = re.sub(r"\\\n", " ", path.read_text())
        lines = [ln.strip() for ln in text.splitlines()]
        instructions = [ln for ln in lines if ln and not ln.startswith("#")]
        dockerfile = cls(args={})
        for line in instructions:
            keyword, _, rest = line.partition(" ")
            dockerfile._apply(keyword.upper(), rest.strip(), build_args)
        return dockerfile

    def _expand(self, value: str) -> str:
        known = {**self.args, **self.env}

        def substitute(match: re.Match[str]) -> str:
            name = match[1] or match[2]
            assert name in known, f"${name} is not defined in the Dockerfile"
            return known[name]

        return re.sub(r"\$\{(\w+)\}|\$(\w+)", substitute, value)

    def _apply(self, keyword: str, rest: str, build_args: Mapping[str, str]) -> None:
        match keyword:
            case "FROM":
                pass
            case "ARG":
                name, _, default = rest.partition("=")
                self.args[name] = build_args.get(name, default)
            case "ENV":
                for pair in shlex.split(rest):
                    name, equals, value = pair.partition("=")
                    assert equals, f"ENV {pair}: use the NAME=value form"
                    self.env[name] = self._expand(value)
                    if not self.runs:
                        self.build_env[name] = self.env[name]
            case "WORKDIR":
                self.workdir = self._expand(rest)
            case "COPY":
                words = [self._expand(w) for w in shlex.split(rest)]
                assert not any(w.startswith("--") for w in words), rest
                self.copies.append(Copy(words[:-1], words[-1]))
            case "RUN":
                self.runs.append(" ".join(rest.split()))
            case "USER":
                self.user = rest
            case "EXPOSE":
                self.expose += [int(self._expand(p)) for p in rest.split()]
            case "VOLUME":
                self.volumes += json.loads(rest)
            case "HEALTHCHECK":
                options, _, command = rest.partition("CMD ")
                self.healthcheck = json.loads(command)
                for option in options.split():
                    name, _, value = option.removeprefix("--").partition("=")
                    self.healthcheck_options[name.replace("-", "_")] = value
            case "CMD":
                self.cmd = json.loads(rest)
            case _:
                raise AssertionError(f"tests/compose.py does not know {keyword}")


# ---------------------------------------------------------------------------
# The build context: what COPY really copies, given the ignore file.
# ---------------------------------------------------------------------------


def _pattern(glob: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex (``*``, ``?``, ``**``; no character classes)."""
    assert "[" not in glob and "\\" not in glob, f"unsupported ignore pattern {glob!r}"
    out = ""
    for token in re.split(r"(\*\*/|\*\*|\*|\?)", glob.strip("/")):
        out += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(
            token, re.escape(token)
        )
    return re.compile(out)


@dataclass
class IgnoreFile:
    """``.dockerignore`` rules: the last matching one decides; a directory's rule covers its
    contents (as in moby's patternmatcher)."""

    rules: list[tuple[re.Pattern[str], bool]]

    @classmethod
    def read(cls, path: Path) -> "IgnoreFile":
        rules = []
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                include = line.startswith("!")
                rules.append((_pattern(line.removeprefix("!")), include))
        return cls(rules)

    def ignored(self, relative: str) -> bool:
        path = PurePosixPath(relative)
        candidates = [str(path), *(str(p) for p in path.parents if str(p) != ".")]
        ignored = False
        for pattern, include in self.rules:
            if any(pattern.fullmatch(c) for c in candidates):
                ignored = not include
        return ignored


def context_files(source: str, ignore: IgnoreFile) -> list[str]:
    """The files below ``source`` (relative to the repository) that reach the build."""
    path = ROOT / source
    assert path.exists(), f"COPY {source}: not in the repository"
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    relative = [p.relative_to(ROOT).as_posix() for p in files]
    return [r for r in relative if not ignore.ignored(r)]


def copy_build(dockerfile: Dockerfile, ignore: IgnoreFile, target: Path) -> list[str]:
    """Lay out what the image's ``COPY`` lines put below WORKDIR into ``target``.

    Returns the files copied, relative to ``target``.
    """
    copied: list[str] = []
    for copy in dockerfile.copies:
        destination = target / PurePosixPath(copy.destination)
        for source in copy.sources:
            files = context_files(source, ignore)
            assert files, f"COPY {source}: nothing left after {ignore}"
            is_dir = (ROOT / source).is_dir()
            assert is_dir or len(copy.sources) == 1 or copy.destination.endswith("/")
            for name in files:
                if is_dir:
                    to = destination / PurePosixPath(name).relative_to(source)
                elif copy.destination.endswith("/"):
                    to = destination / PurePosixPath(name).name
                else:
                    to = destination
                to.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, to)
                copied.append(to.relative_to(target).as_posix())
    return copied
