"""Each compose stack's app, installed and started as its image would be, on real backends.

There is no container engine here, so the images are never built. For each
``docker/<app>/compose.yaml`` the test does what the image and the stack would do, as far
as this machine allows:

* **install**: a fresh virtual environment (nothing from the test extras), the files the
  Dockerfile ``COPY``s (through its ignore file) laid out as WORKDIR, PyTorch's CPU build
  first where ``TORCH=cpu``, then ``pip install -c constraints.txt ".[EXTRA]"``: not
  editable, so a missing dependency or package-data file fails here as in the image;
* **start**: the Dockerfile's ``CMD`` in that directory, with only the Dockerfile's ``ENV``
  and the compose file's ``environment``; service names point at the test backends (a real
  Milvus 2.3.5 server from the ``milvus`` package for ``milvus:19530``, a throwaway MariaDB
  holding the compose file's user, password and database for ``mysql:3306``), the app's
  port at a free one and ``0.0.0.0`` at ``127.0.0.1`` (the stack publishes on loopback only);
* **healthcheck**: the compose file's ``test`` command, run with the environment's
  ``python``, until it passes within ``start_period + retries * interval``;
* **use**: the sample load job succeeds, one real search finds what it must, the web
  front-end is served; nothing is written outside the data volume (the image's user owns
  only ``/app/data``);
* **stop**: SIGTERM, as ``docker compose stop`` sends, and a clean exit within its grace.

What this does not cover: the image build itself, the base image's Python and system
libraries, etcd and MinIO, MySQL 8.4 instead of MariaDB, the non-root user (only what it
may write is checked) and container networking.
"""

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import venv
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import milvus
import pytest
from sqlalchemy import create_engine, make_url, text

from tests.backends import (
    MilvusServer,
    MySQLBackend,
    _spawn,  # the servers' own spawner: own session, killed with the test process
    _terminate,
    provision_mysql,
    reserve_ports,
)
from tests.compose import (
    DOCKER,
    ROOT,
    STACKS,
    Dockerfile,
    IgnoreFile,
    copy_build,
    interpolate,
    load_raw,
    parse_duration,
)
from tests.helpers import drop_milvus_collections

pytestmark = pytest.mark.compose

# The install steps of docker/Dockerfile, as written there. The CPU build of PyTorch comes
# from this machine's pip configuration instead of --index-url (no other index is reachable).
TORCH_STEP = 'pip install --index-url "$TORCH_INDEX_URL" -c constraints.txt torch'
APP_STEP = 'pip install -c constraints.txt ".[${EXTRA}]"'
PIP_TIMEOUT = 1800.0
SAMPLE_TIMEOUT = 600.0
STOP_GRACE = 10.0  # docker compose stop's default before SIGKILL
# A service address in an environment value: http://milvus:19530, ...@mysql:3306/...
SERVICE_ADDRESS = re.compile(r"(?P<lead>//|@)(?P<host>[a-z][a-z0-9_-]*):(?P<port>\d+)")


@dataclass
class Stack:
    """One compose file, defaults interpolated, and the image its app service builds."""

    name: str
    compose: dict[str, Any]
    image: Dockerfile

    @classmethod
    def read(cls, compose_file: Path) -> "Stack":
        document = interpolate(load_raw(compose_file), {})
        build = document["services"]["app"]["build"]
        assert (compose_file.parent / build["context"]).resolve() == ROOT
        image = Dockerfile.read(ROOT / build["dockerfile"], build["args"])
        return cls(compose_file.parent.name, document, image)

    @property
    def app(self) -> dict[str, Any]:
        return self.compose["services"]["app"]

    @property
    def container_port(self) -> int:
        [mapping] = self.app["ports"]
        return int(mapping.rsplit(":", 1)[1])


@dataclass
class Timings:
    """Seconds each step took, printed at the end (``pytest -s`` shows them)."""

    values: dict[str, float] = field(default_factory=dict)

    def measure(self, name: str, since: float) -> None:
        self.values[name] = round(time.monotonic() - since, 1)


# ---------------------------------------------------------------------------
# Backends the stack's services stand for.
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MySQLBackend]:
    """A private MariaDB: the stack's user and database are created in it, not in a
    server that other test sessions share."""
    backend = provision_mysql(
        tmp_path_factory.mktemp("compose-mysql"), allow_env=False, allow_local=False
    )
    yield backend
    backend.close()


def create_mysql_account(mariadb: MySQLBackend, mysql_env: dict[str, str]) -> None:
    """What the mysql image does with MYSQL_DATABASE/USER/PASSWORD, on a fresh database."""
    database, user = mysql_env["MYSQL_DATABASE"], mysql_env["MYSQL_USER"]
    assert re.fullmatch(r"\w+", database) and re.fullmatch(r"\w+", user)
    engine = create_engine(mariadb.server_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{database}`"))
            conn.execute(text(f"CREATE DATABASE `{database}`"))
            conn.execute(text(f"DROP USER IF EXISTS '{user}'@'%'"))
            conn.execute(
                text(f"CREATE USER '{user}'@'%' IDENTIFIED BY :password"),
                {"password": mysql_env["MYSQL_PASSWORD"]},
            )
            conn.execute(text(f"GRANT ALL ON `{database}`.* TO '{user}'@'%'"))
    finally:
        engine.dispose()


def stand_ins(stack: Stack, server: MilvusServer, mariadb: MySQLBackend) -> dict[str, str]:
    """``service:port`` of the stack -> ``127.0.0.1:port`` of the backend standing in."""
    services = stack.compose["services"]
    assert services["milvus"]["image"] == f"milvusdb/milvus:v{milvus.__version__}"
    mysql_port = make_url(mariadb.server_url).port
    return {"milvus:19530": f"127.0.0.1:{server.port}", "mysql:3306": f"127.0.0.1:{mysql_port}"}


# ---------------------------------------------------------------------------
# Install, as the Dockerfile does.
# ---------------------------------------------------------------------------


def host_env() -> dict[str, str]:
    """This process's environment for pip (its index, find-links and cache), without
    anything that would let the new environment see this repository or this venv."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PYTHON") and k not in {"VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV"}
    }


def run_logged(argv: list[str], log: Path, *, timeout: float, **kwargs: Any) -> None:
    with log.open("ab") as out:
        done = subprocess.run(
            argv, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False, **kwargs
        )
    assert done.returncode == 0, f"{argv} failed ({done.returncode}):\n{tail(log, 60)}"


def install(stack: Stack, app_dir: Path, env_dir: Path, timings: Timings) -> Path:
    """The image's two pip steps into a fresh environment; returns its ``bin`` folder.

    Two differences from the image, neither in what gets installed: this test's pip drives
    the install (``pip --python``), which spares a copy of pip in every environment, and
    ``--no-compile`` skips writing bytecode, a cache that takes longer than the install
    itself here (Python compiles what it imports anyway).
    """
    image = stack.image
    runs = "\n".join(image.runs)
    assert f'if [ "$TORCH" = "cpu" ]; then {TORCH_STEP}' in runs and APP_STEP in runs
    venv.EnvBuilder(with_pip=False).create(env_dir)
    env = {**host_env(), **image.build_env}
    env.pop("PIP_NO_CACHE_DIR", None)  # the image keeps no cache; here it saves the downloads
    log = env_dir.parent / "pip.log"
    pip = [sys.executable, "-m", "pip", "--python", str(env_dir / "bin" / "python")]
    install = [*pip, "install", "--no-compile", "-c", "constraints.txt"]
    if image.args["TORCH"] == "cpu":
        started = time.monotonic()
        run_logged([*install, "torch"], log, timeout=PIP_TIMEOUT, cwd=app_dir, env=env)
        timings.measure("pip torch", started)
    started = time.monotonic()
    extra = f".[{image.args['EXTRA']}]"
    run_logged([*install, extra], log, timeout=PIP_TIMEOUT, cwd=app_dir, env=env)
    timings.measure("pip app", started)
    run_logged([*pip, "check"], log, timeout=120, env=env)
    return env_dir / "bin"


# ---------------------------------------------------------------------------
# Run, as the container would.
# ---------------------------------------------------------------------------


def container_env(
    stack: Stack, app_dir: Path, bin_dir: Path, home: Path, addresses: dict[str, str], port: int
) -> dict[str, str]:
    """The base image's few variables, the Dockerfile's ENV, then the compose environment;
    paths below WORKDIR moved to ``app_dir``, service addresses to their stand-ins."""
    workdir = stack.image.workdir.rstrip("/")
    env = {"PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(home)}
    env |= stack.image.env
    env |= {k: str(v) for k, v in stack.app["environment"].items()}
    for key, value in env.items():
        if value == workdir or value.startswith(f"{workdir}/"):
            env[key] = str(app_dir) + value[len(workdir) :]

    def stand_in(match: re.Match[str]) -> str:
        address = f"{match['host']}:{match['port']}"
        if match["host"] not in stack.compose["services"]:
            return match[0]
        assert address in addresses, f"no test backend stands in for {address}"
        return match["lead"] + addresses[address]

    env = {k: SERVICE_ADDRESS.sub(stand_in, v) for k, v in env.items()}
    assert env["SEARCH_HOST"] == "0.0.0.0" and int(env["SEARCH_PORT"]) == stack.container_port
    env["SEARCH_HOST"], env["SEARCH_PORT"] = "127.0.0.1", str(port)
    return env


def tail(path: Path, lines: int = 40) -> str:
    content = path.read_text(errors="replace").splitlines() if path.exists() else []
    return f"--- {path} ---\n" + "\n".join(content[-lines:])


def files_outside(app_dir: Path, volume: str) -> set[str]:
    return {
        p.relative_to(app_dir).as_posix()
        for p in app_dir.rglob("*")
        if p.relative_to(app_dir).parts[0] != volume
    }


def wait_healthy(
    stack: Stack, proc: subprocess.Popen[bytes], env: dict[str, str], app_dir: Path, log: Path
) -> None:
    """Run the compose healthcheck until it passes, failing after Docker would have
    declared the container unhealthy (start_period, then ``retries`` failed intervals)."""
    check = stack.app["healthcheck"]
    assert check["test"][0] == "CMD"
    own = f"127.0.0.1:{stack.container_port}/"
    probe = [arg.replace(own, f"127.0.0.1:{env['SEARCH_PORT']}/") for arg in check["test"][1:]]
    assert probe != check["test"][1:], f"the healthcheck does not probe {own}"
    executable = shutil.which(probe[0], path=env["PATH"])
    assert executable == str(Path(env["PATH"].split(":")[0]) / probe[0]), executable
    timeout = parse_duration(check["timeout"])
    patience = parse_duration(check["start_period"]) + check["retries"] * parse_duration(
        check["interval"]
    )
    deadline = time.monotonic() + patience
    last = ""
    while True:
        assert proc.poll() is None, f"the app exited ({proc.returncode}):\n{tail(log)}"
        try:
            done = subprocess.run(
                [executable, *probe[1:]],
                env=env,
                cwd=app_dir,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            if done.returncode == 0:
                return
            last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
        except subprocess.TimeoutExpired:
            last = f"no answer within {timeout} s"
        assert time.monotonic() < deadline, (
            f"unhealthy after {patience:.0f} s (last: {last}):\n{tail(log)}"
        )
        time.sleep(1.0)  # more often than `interval`: only the deadline matters here


def wait_for_sample(client: httpx.Client) -> dict[str, Any]:
    """The one job of a first start: the sample load, queued by the app itself."""
    deadline = time.monotonic() + SAMPLE_TIMEOUT
    while True:
        jobs = client.get("/jobs").raise_for_status().json()
        if jobs and jobs[0]["status"] in {"succeeded", "failed", "cancelled"}:
            [job] = jobs
            assert job["source"] == "sample", job
            return job
        assert time.monotonic() < deadline, f"the sample did not load in time: {jobs}"
        time.sleep(0.5)


# ---------------------------------------------------------------------------
# What each app must find in its own sample data.
# ---------------------------------------------------------------------------


def ask_the_chatbot(client: httpx.Client) -> None:
    with (ROOT / "solutions" / "qa_chatbot" / "data" / "sample_qa.csv").open() as sample:
        pair = list(csv.DictReader(sample))[1]
    body = client.post("/collections/faq/ask", json={"question": pair["question"]}).json()
    assert body["answered"] and body["matched_question"] == pair["question"], body
    assert body["answer"] == pair["answer"]


def search_by_photo(client: httpx.Client) -> None:
    sample = ROOT / "solutions" / "image_search" / "data" / "sample"
    photo = sample / "photos" / "coffee.jpg"
    response = client.post(
        "/collections/photos/search",
        files={"file": (photo.name, photo.read_bytes(), "image/jpeg")},
        data={"top_k": "3"},
    )
    best = response.raise_for_status().json()["results"][0]
    assert best["filename"] == "photos/coffee.jpg" and best["score"] > 0.99, best
    thumbnail = client.get(best["thumbnail_url"])
    assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/jpeg"


def find_aspirin(client: httpx.Client) -> None:
    response = client.post(
        "/collections/drugs/similar", json={"smiles": "CC(=O)Oc1ccccc1C(=O)O", "top_k": 5}
    )
    best = response.raise_for_status().json()["results"][0]
    assert (best["name"], best["similarity"]) == ("Aspirin", 1.0), best


def find_the_cockatoo(client: httpx.Client) -> None:
    videos = client.get("/collections/clips/videos").raise_for_status().json()["videos"]
    assert len(videos) == len(VIDEO_SAMPLE), videos
    response = client.get("/collections/clips/moments/by-words", params={"q": "cockatoo"})
    [found] = response.raise_for_status().json()["results"]
    assert found["video"]["name"] == "cockatoo.mp4", found
    part = client.get(found["video"]["player_url"], headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100, part.headers


def csv_rows(path: Path) -> int:
    with path.open() as file:
        return sum(1 for _ in csv.DictReader(file))


@dataclass(frozen=True)
class App:
    namespace: str
    collection: str
    sample_size: Callable[[], int]  # items the sample load adds
    search: Callable[[httpx.Client], None]
    one_entry_per_item: bool = True  # False: an item is stored as several (a video's frames)


VIDEO_SAMPLE = sorted((ROOT / "solutions" / "video_analysis" / "data" / "sample").glob("*.mp4"))


APPS = {
    "qa_chatbot": App(
        "qa",
        "faq",
        lambda: csv_rows(ROOT / "solutions" / "qa_chatbot" / "data" / "sample_qa.csv"),
        ask_the_chatbot,
    ),
    "image_search": App(
        "images",
        "photos",
        lambda: sum(
            1 for p in (ROOT / "solutions" / "image_search" / "data" / "sample").rglob("*.jpg")
        ),
        search_by_photo,
    ),
    "molecular_search": App(
        "molecules",
        "drugs",
        lambda: csv_rows(ROOT / "solutions" / "molecular_search" / "data" / "approved_drugs.csv"),
        find_aspirin,
    ),
    "video_analysis": App(
        "video", "clips", lambda: len(VIDEO_SAMPLE), find_the_cockatoo, one_entry_per_item=False
    ),
}


# ---------------------------------------------------------------------------
# The test.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("compose_file", STACKS, ids=lambda p: p.parent.name)
def test_backend_healthchecks_probe_the_servers(
    compose_file: Path, milvus_server: MilvusServer, mariadb: MySQLBackend
) -> None:
    """The Milvus and MySQL services' healthcheck commands pass against the real servers
    standing in for them (the host's curl and mysqladmin, the stand-ins' ports)."""
    services = Stack.read(compose_file).compose["services"]
    create_mysql_account(mariadb, services["mysql"]["environment"])
    probes = {
        "milvus": (
            "//localhost:9091/",
            f"//127.0.0.1:{milvus_server.ports['metrics_port']}/",
            [],
        ),
        "mysql": ("127.0.0.1", "127.0.0.1", [f"--port={make_url(mariadb.server_url).port}"]),
    }
    for name, (own, stand_in, extra) in probes.items():
        test = services[name]["healthcheck"]["test"]
        assert test[0] == "CMD" and any(own in arg for arg in test), test
        argv = [arg.replace(own, stand_in) for arg in test[1:]] + extra
        assert shutil.which(argv[0]), f"{argv[0]} is not installed here"
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        assert done.returncode == 0, (name, argv, done.stdout, done.stderr)


@pytest.mark.parametrize("compose_file", STACKS, ids=lambda p: p.parent.name)
def test_stack_app_installs_starts_and_serves(
    compose_file: Path, milvus_server: MilvusServer, mariadb: MySQLBackend, tmp_path: Path
) -> None:
    stack = Stack.read(compose_file)
    expected = APPS[stack.name]
    timings = Timings()
    test_started = time.monotonic()
    app_dir, env_dir, home = tmp_path / "app", tmp_path / "venv", tmp_path / "home"
    home.mkdir()
    [volume] = stack.image.volumes
    volume_dir = Path(volume).relative_to(stack.image.workdir)
    try:
        # -- the image ------------------------------------------------------------
        started = time.monotonic()
        ignore = IgnoreFile.read(DOCKER / "Dockerfile.dockerignore")
        copy_build(stack.image, ignore, app_dir)
        bin_dir = install(stack, app_dir, env_dir, timings)
        timings.measure("install", started)
        (app_dir / volume_dir).mkdir()  # RUN mkdir -p /app/data

        # -- the stack's other services ---------------------------------------------
        create_mysql_account(mariadb, stack.compose["services"]["mysql"]["environment"])
        drop_milvus_collections(milvus_server.uri)
        port = reserve_ports(1)[0]
        addresses = stand_ins(stack, milvus_server, mariadb)
        env = container_env(stack, app_dir, bin_dir, home, addresses, port)

        # What runs is the installed package, with the CPU build of PyTorch or none.
        facts = subprocess.run(
            [
                str(bin_dir / "python"),
                "-c",
                "import importlib.metadata as m, importlib.util as u, json;"
                f"app = u.find_spec('solutions.{stack.name}.app').origin;"
                "torch = m.version('torch') if u.find_spec('torch') else None;"
                "print(json.dumps({'app': app, 'torch': torch}))",
            ],
            env=env,
            cwd=app_dir,
            capture_output=True,
            text=True,
            check=True,
        )
        installed = json.loads(facts.stdout)
        assert Path(installed["app"]).is_relative_to(env_dir), installed
        if stack.image.args["TORCH"] == "cpu":
            assert installed["torch"].endswith("+cpu"), installed
        else:
            assert installed["torch"] is None, installed
        before = files_outside(app_dir, volume_dir.parts[0])

        # -- docker compose up --------------------------------------------------------
        log = tmp_path / "app.log"
        started = time.monotonic()
        proc = _spawn(stack.image.cmd, log_path=log, cwd=app_dir, env=env)
        try:
            wait_healthy(stack, proc, env, app_dir, log)
            timings.measure("healthy", started)
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}", timeout=60, trust_env=False
            ) as client:
                ready = client.get("/health/ready").raise_for_status().json()
                assert (ready["milvus_mode"], ready["sql"]) == ("server", "mysql"), ready

                job = wait_for_sample(client)
                timings.measure("sample loaded", started)
                size = expected.sample_size()
                assert job["status"] == "succeeded" and job["failed"] == 0, job
                assert job["total"] == job["added"] == size, job
                info = client.get(f"/collections/{expected.collection}").json()
                if expected.one_entry_per_item:
                    assert info["count"] == size, info
                else:  # the video app stores each video as its sampled frames
                    assert info["count"] > size, info

                expected.search(client)

                page = client.get("/")
                assert page.headers["content-type"].startswith("text/html")
                frontend = Path(env["SEARCH_FRONTEND_DIR"])  # the copy of /app/frontend
                assert frontend.is_relative_to(app_dir), frontend
                assert page.content == (frontend / "index.html").read_bytes()
                script = client.get("/ui/app.js")
                assert script.content == (frontend / "ui" / "app.js").read_bytes()
                [link] = client.get("/apps").json()
                assert (link["name"], link["collection"]) == (
                    expected.namespace,
                    expected.collection,
                )

            # -- docker compose stop ----------------------------------------------------
            stopping = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                pytest.fail(f"still running {STOP_GRACE} s after SIGTERM:\n{tail(log)}")
            timings.measure("stop", stopping)
            # uvicorn re-raises the SIGTERM once shut down: Docker reports 143, a clean stop.
            assert code in (0, -signal.SIGTERM), f"exit code {code} after SIGTERM:\n{tail(log)}"
            shutdown = log.read_text().partition("Shutting down")[2]
            assert "Application shutdown complete." in shutdown, tail(log)
            assert "Traceback" not in shutdown and " ERROR " not in shutdown, tail(log)
        finally:
            _terminate(proc, grace=0)
        written = files_outside(app_dir, volume_dir.parts[0]) - before
        assert not written, f"written outside {volume}, which the image's user cannot: {written}"
    finally:
        shutil.rmtree(env_dir, ignore_errors=True)  # ~1 GB with PyTorch
        timings.measure("total", test_started)
        print(f"\n{stack.name}: {timings.values} (s)", file=sys.stderr)
