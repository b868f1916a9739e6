"""Provision real Milvus and MySQL/MariaDB servers for the test suite.

The suite runs against real backends instead of mocks, so that it exercises
the same wire protocols, type conversions and consistency rules as
production.  ``conftest.py`` drives this module from session fixtures.  When
a backend cannot be provided, :class:`BackendUnavailable` is raised with what
was tried: a run without its backends must fail loudly, never skip.

Everything started here runs in its own process group, is stopped by
``stop()``/``close()``, by an ``atexit`` hook as a fallback, and, where
util-linux ``setpriv`` exists, by the kernel (``PR_SET_PDEATHSIG``) if the
test process dies without cleaning up, so no server outlives the test run.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import getpass
import lzma
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

import milvus  # type: ignore[import-untyped]
import mysql.connector
from milvus import MilvusServerConfig
from pymilvus import MilvusClient
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError

__all__ = [
    "DEFAULT_MYSQL_URL",
    "MILVUS_READY_TIMEOUT",
    "MYSQL_URL_ENV",
    "BackendUnavailable",
    "MilvusServer",
    "MySQLBackend",
    "provision_mysql",
]


class BackendUnavailable(RuntimeError):
    """A real backend could not be provided; the message says what was tried.

    It deliberately is not a skip: a suite that silently skips its backend
    tests looks green while testing nothing.
    """


# ---------------------------------------------------------------------------
# Process helpers shared by Milvus and MariaDB.
# ---------------------------------------------------------------------------

_live_processes: set[subprocess.Popen[bytes]] = set()
_live_lock = threading.Lock()


def _spawn(
    argv: list[str], *, log_path: Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` detached in its own session, output to ``log_path``.

    A new session keeps the terminal's Ctrl-C away from the server, so the
    test run, not the signal, decides the shutdown order.  ``setpriv
    --pdeathsig KILL`` (when available) makes the kernel kill the server if
    the test process dies without running its cleanup (SIGKILL, OOM, ...).
    The kernel ties that signal to the calling *thread*: call this from a
    thread that lives as long as the server (pytest's main thread does).
    """
    setpriv = shutil.which("setpriv")
    if setpriv is not None:
        argv = [setpriv, "--pdeathsig", "KILL", "--", *argv]
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    with _live_lock:
        _live_processes.add(proc)
    return proc


def _terminate(proc: subprocess.Popen[bytes], grace: float) -> None:
    """Stop ``proc``'s process group: SIGTERM, wait ``grace`` s, then SIGKILL.

    ``grace=0`` skips SIGTERM, for servers whose graceful stop is useless.
    """
    steps = [(signal.SIGKILL, 10.0)]
    if grace > 0:
        steps.insert(0, (signal.SIGTERM, grace))
    try:
        for sig, wait in steps:
            if proc.poll() is not None:
                break  # reaped: its pid may be reused, so signal nothing more
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)  # pid == pgid: started with a new session
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=wait)
    finally:
        with _live_lock:
            _live_processes.discard(proc)


@atexit.register
def _kill_leftovers() -> None:
    """Last resort when a fixture's teardown never ran (e.g. a crash in pytest)."""
    with _live_lock:
        leftovers = list(_live_processes)
    for proc in leftovers:
        _terminate(proc, grace=2.0)


def reserve_ports(count: int) -> list[int]:
    """Return ``count`` distinct ports that are currently free on all interfaces.

    The sockets are bound to ``0.0.0.0`` because some Milvus listeners bind
    every interface, and all are held until every port is picked so the
    kernel cannot hand out one port twice.  A small race with other programs
    remains until the server binds them; callers retry on "address in use".
    """
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("0.0.0.0", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def _tail(path: Path, lines: int = 40) -> str:
    """Return the last ``lines`` lines of a log, for error messages."""
    try:
        content = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(content[-lines:])


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (blocking)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------
# Milvus standalone (from the ``milvus`` PyPI package).
# ---------------------------------------------------------------------------

MILVUS_READY_TIMEOUT = 120.0
"""Seconds to wait for a Milvus server to answer ``list_collections``."""

# Template placeholders of milvus/data/config.yaml.template that are ports.
# ``index_coord_port`` only appears in the disabled bindIndexNodeMode address
# but gets a free port anyway so the rendered config never names a fixed one.
_MILVUS_PORT_KEYS = (
    "proxy_port",
    "proxy_internal_port",
    "root_coord_port",
    "query_coord_port",
    "query_node_port",
    "index_coord_port",
    "index_node_port",
    "data_coord_port",
    "data_node_port",
    "etcd_port",
)
# Components whose ``ip`` (the address advertised in etcd for internal gRPC)
# would otherwise be "the first unicastable address" of the machine.
_MILVUS_COMPONENTS = (
    "rootCoord",
    "proxy",
    "queryCoord",
    "queryNode",
    "indexNode",
    "dataCoord",
    "dataNode",
)
_MILVUS_START_ATTEMPTS = 3


class _PortClash(Exception):
    """A reserved port was taken before Milvus bound it; retry with new ones."""


def _unpack_milvus_binaries(cache_dir: Path) -> Path:
    """Unpack the ~250 MB of binaries shipped lzma-compressed in the wheel.

    Done once per package version into ``cache_dir`` (cold: a few seconds;
    warm: a stat).  Unlike ``milvus._initialize_data_files`` it is safe for
    concurrent test sessions: a file lock serialises unpacking, and each file
    is written aside then renamed, so a binary that another session is
    running is never rewritten in place (ETXTBSY) or seen half-written.
    """
    source_dir = Path(milvus.__file__).parent / "data" / "bin"
    sources = sorted(source_dir.glob("*.lzma"))
    if not sources:
        raise BackendUnavailable(f"no Milvus binaries (*.lzma) in {source_dir}")
    bin_dir = cache_dir / f"milvus-{milvus.__version__}" / "bin"
    stamp = bin_dir / ".unpacked"
    manifest = "".join(
        f"{src.name} {src.stat().st_size} {src.stat().st_mtime_ns}\n" for src in sources
    )
    if stamp.is_file() and stamp.read_text() == manifest:
        return bin_dir
    with _flock(bin_dir.parent / ".unpack.lock"):
        if stamp.is_file() and stamp.read_text() == manifest:
            return bin_dir  # another session unpacked while we waited
        bin_dir.mkdir(parents=True, exist_ok=True)
        for src in sources:
            target = bin_dir / src.stem  # "libz.so.1.lzma" -> "libz.so.1"
            partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
            with lzma.open(src) as packed, partial.open("wb") as unpacked:
                shutil.copyfileobj(packed, unpacked, 1 << 20)
            partial.chmod(0o755)
            partial.replace(target)
        stamp.write_text(manifest)
    return bin_dir


def _remove_milvus_droppings(alias: str, pid: int | None) -> None:
    """Delete the files Milvus leaves outside its data dir when killed.

    Their locations are hard-coded in the 2.3.5 binary: the pid file in its
    runtime dir (``/run/milvus``, or ``/tmp/milvus`` when that is not
    writable) and a ``server_id_<pid>`` file in ``/tmp/milvus``.
    """
    names = [f"standalone-{alias}.pid"]
    if pid is not None:
        names.append(f"server_id_{pid}")
    for runtime_dir in (Path("/run/milvus"), Path("/tmp/milvus")):
        for name in names:
            with contextlib.suppress(OSError):
                (runtime_dir / name).unlink()


def _sweep_stale_instances(instances_dir: Path) -> None:
    """Delete what servers of crashed or killed test runs left behind.

    A live instance holds an flock on its ``.lock`` file, which holds the
    server's pid (or "starting"); if we can take that lock, nobody uses the
    directory any more.  An empty lock file is one being set up right now.
    """
    if not instances_dir.is_dir():
        return
    for candidate in instances_dir.iterdir():
        lock_path = candidate / ".lock"
        if not lock_path.is_file():
            continue  # being created right now, or not ours
        try:
            handle = lock_path.open("r+")
        except FileNotFoundError:
            continue  # another session swept it just now
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    continue  # owned by a live server
                raise
            content = handle.read().strip()
            if not content:
                continue
            _remove_milvus_droppings(candidate.name, int(content) if content.isdigit() else None)
            shutil.rmtree(candidate, ignore_errors=True)


def _write_etcd_config(path: Path, client_port: int, peer_port: int) -> None:
    """Write the config file of Milvus' embedded etcd.

    Without one the embedded etcd ignores ``etcd.endpoints`` and listens on
    the fixed 127.0.0.1:2379/2380, so a second server on the machine cannot
    start (it hangs until its 180 s start timeout).
    """
    client = f"http://127.0.0.1:{client_port}"
    peer = f"http://127.0.0.1:{peer_port}"
    path.write_text(
        "name: default\n"
        f"listen-client-urls: {client}\n"
        f"advertise-client-urls: {client}\n"
        f"listen-peer-urls: {peer}\n"
        f"initial-advertise-peer-urls: {peer}\n"
        f"initial-cluster: default={peer}\n"
        "initial-cluster-state: new\n"
    )


def _write_milvus_config(instance_dir: Path, ports: dict[str, int]) -> Path:
    """Render the wheel's config template for one instance; return configs/.

    The package's own ``MilvusServerConfig`` renders the template: ports,
    log and data paths under ``instance_dir``, and (through ``set``) each
    component advertising 127.0.0.1.  ``etcd.config.path`` is not in the
    template, so it is inserted into the rendered file afterwards.
    """
    config = MilvusServerConfig(
        data_dir=str(instance_dir),
        **{key: ports[key] for key in _MILVUS_PORT_KEYS},
    )
    for component in _MILVUS_COMPONENTS:
        config.set(f"{component}.ip", "127.0.0.1")
    config.resolve()  # also creates configs/, logs/ and data/

    config_dir = instance_dir / "configs"
    etcd_config = config_dir / "etcd.yaml"
    _write_etcd_config(etcd_config, ports["etcd_port"], ports["etcd_peer_port"])
    milvus_yaml = config_dir / "milvus.yaml"
    rendered = milvus_yaml.read_text()
    patched = rendered.replace("\netcd:\n", f"\netcd:\n  config:\n    path: {etcd_config}\n", 1)
    if patched == rendered:
        raise BackendUnavailable(
            f"cannot find the top-level 'etcd:' section in {milvus_yaml}; "
            f"the milvus {milvus.__version__} config template changed"
        )
    milvus_yaml.write_text(patched)
    return config_dir


class MilvusServer:
    """A real Milvus standalone server, private to one test session.

    Binaries come from the ``milvus`` wheel and are unpacked once into
    ``cache_dir``; data, config and logs live in a fresh directory under
    ``cache_dir/instances`` that is deleted by :meth:`stop` (a failed start
    keeps it for inspection until a later start sweeps it).  Every port —
    the proxy, the internal gRPC ports, metrics/health and the embedded
    etcd — is chosen free at start, so servers from overlapping test runs
    coexist.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.  For fault
    tests, :meth:`kill` crashes it (SIGKILL) keeping its directory, data and ports, and
    :meth:`restart` brings it back on the same ports with the same data.

    Server 2.3.5 differs from Milvus Lite in ways tests meet: collections
    default to Bounded consistency (a search right after an insert may miss
    the rows unless the collection or request uses ``"Strong"``), and a
    collection may hold only one vector field.
    """

    def __init__(
        self, cache_dir: Path | str, *, ready_timeout: float = MILVUS_READY_TIMEOUT
    ) -> None:
        """Prepare (but do not start) a server caching binaries in ``cache_dir``."""
        self._cache_dir = Path(cache_dir).resolve()
        self._ready_timeout = ready_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._instance_dir: Path | None = None
        self._lock_handle: int | None = None
        self._ports: dict[str, int] = {}
        self._argv: list[str] = []
        self._env: dict[str, str] = {}

    # -- public API ---------------------------------------------------------

    @property
    def uri(self) -> str:
        """``http://127.0.0.1:PORT`` of the proxy, for ``MilvusClient(uri)``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def port(self) -> int:
        """The proxy (client-facing gRPC) port."""
        self._require_started()
        return self._ports["proxy_port"]

    @property
    def ports(self) -> dict[str, int]:
        """The ports reserved for this server, by role (a copy).

        All are listened on except ``index_coord_port`` (config only).
        """
        self._require_started()
        return dict(self._ports)

    @property
    def pid(self) -> int:
        """Process id (and process group id) of the server."""
        self._require_started()
        if self._proc is None:
            raise RuntimeError("MilvusServer is killed; restart() it first")
        return self._proc.pid

    @property
    def instance_dir(self) -> Path:
        """This server's private directory (configs, logs, data)."""
        self._require_started()
        assert self._instance_dir is not None
        return self._instance_dir

    @property
    def log_path(self) -> Path:
        """The server's combined stdout/stderr log."""
        return self.instance_dir / "logs" / "server.log"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Self:
        """Start the server and wait until it serves ``list_collections``.

        Retries with fresh ports if one was taken in the meantime; raises
        :class:`BackendUnavailable` with the log tail on any other failure.
        """
        if self._instance_dir is not None:
            raise RuntimeError("MilvusServer already started (restart() it after a kill())")
        bin_dir = _unpack_milvus_binaries(self._cache_dir)
        instances_dir = self._cache_dir / "instances"
        _sweep_stale_instances(instances_dir)
        instances_dir.mkdir(parents=True, exist_ok=True)

        for attempt in range(1, _MILVUS_START_ATTEMPTS + 1):
            try:
                self._launch(bin_dir, instances_dir)
                self._wait_ready()
            except _PortClash as clash:
                self._abandon(remove=True)
                if attempt == _MILVUS_START_ATTEMPTS:
                    raise BackendUnavailable(
                        f"Milvus: a port was taken by someone else in each of "
                        f"{attempt} start attempts; last time: {clash}"
                    ) from None
            except BaseException:
                self._abandon(remove=False)  # keep logs for the error message
                raise
            else:
                return self
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Kill the server and delete its directory (its data is disposable)."""
        self._abandon(remove=True)

    def kill(self) -> None:
        """Crash the server: SIGKILL its process group, as the OOM killer would.

        Unlike :meth:`stop`, the instance directory (config, etcd data, segments, logs) and
        the ports are kept, so :meth:`restart` brings back the same server with its data.
        Clients see the port refuse connections until then.
        """
        self._require_started()
        if self._proc is not None:
            _terminate(self._proc, grace=0)
            # The pid file would make the next start believe the server still runs.
            _remove_milvus_droppings(self.instance_dir.name, self._proc.pid)
            self._proc = None

    def restart(self) -> Self:
        """Start the server again in the same directory, on the same ports, with the same
        config, and wait until it serves ``list_collections`` (a running one is killed first).

        The embedded etcd comes back with its data, so collections, their rows (even
        those not flushed yet) and their load state survive.  This takes about as long as
        a first start (6-10 s on a 2-core machine), but collections are still loading when
        it returns, for tens of seconds more (searches fail meanwhile): :meth:`wait_loaded`
        waits for them.  The ports cannot change (clients hold the address), so if another
        program took one meanwhile this raises :class:`BackendUnavailable`.
        """
        self._require_started()
        self.kill()
        self._spawn_server()
        try:
            self._wait_ready()
        except _PortClash as clash:
            self.kill()
            raise BackendUnavailable(
                f"Milvus cannot restart on its ports: another program took one ({clash})"
            ) from None
        except BaseException:
            self.kill()  # the directory stays: stop() removes it, the log explains
            raise
        return self

    def wait_loaded(self, timeout: float = MILVUS_READY_TIMEOUT) -> float:
        """Wait until every collection is loaded (searchable); return the seconds waited.

        After a restart 2.3.5 reloads the collections that were loaded, by itself; that
        took 25-30 s for a small collection on a 2-core machine, and meanwhile searches
        fail with code 101, "collection not loaded".
        """
        start = time.monotonic()
        deadline = start + timeout
        client = MilvusClient(uri=self.uri, timeout=10)
        try:
            pending = set(client.list_collections(timeout=10))
            while pending:
                for name in list(pending):
                    state = client.get_load_state(name, timeout=10).get("state")
                    if str(state).rsplit(".", 1)[-1] == "Loaded":
                        pending.discard(name)
                if pending and time.monotonic() > deadline:
                    raise BackendUnavailable(
                        f"Milvus at {self.uri}: {sorted(pending)} still not loaded after "
                        f"{timeout:.0f} s.\n{self._log_excerpt()}"
                    )
                if pending:
                    time.sleep(0.2)
        finally:
            client.close()
        return time.monotonic() - start

    def __enter__(self) -> Self:
        """Start the server."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server, whatever happened inside the block."""
        self.stop()

    # -- internals ----------------------------------------------------------

    def _require_started(self) -> None:
        """Started, and not stopped since (it may be killed, waiting for a restart)."""
        if self._instance_dir is None:
            raise RuntimeError("MilvusServer is not started")

    def _launch(self, bin_dir: Path, instances_dir: Path) -> None:
        instance_dir = Path(tempfile.mkdtemp(prefix="milvus-", dir=instances_dir))
        # Held until stop(): marks the directory as in use for the sweeper.
        self._lock_handle = os.open(instance_dir / ".lock", os.O_CREAT | os.O_RDWR)
        fcntl.flock(self._lock_handle, fcntl.LOCK_EX)
        os.write(self._lock_handle, b"starting\n")
        self._instance_dir = instance_dir

        names = [*_MILVUS_PORT_KEYS, "etcd_peer_port", "metrics_port"]
        self._ports = dict(zip(names, reserve_ports(len(names)), strict=True))
        config_dir = _write_milvus_config(instance_dir, self._ports)

        env = dict(os.environ)
        env.update(
            DEPLOY_MODE="STANDALONE",
            # Serves /healthz, /metrics and the REST API; fixed 9091 otherwise.
            METRICS_PORT=str(self._ports["metrics_port"]),
            MILVUSCONF=str(config_dir),
            LD_LIBRARY_PATH=os.pathsep.join(
                p for p in (str(bin_dir), os.environ.get("LD_LIBRARY_PATH")) if p
            ),
        )
        # -alias gives each server its own /run/milvus/standalone-<alias>.pid
        # instead of all of them sharing (and deleting) standalone.pid.
        self._argv = [str(bin_dir / "milvus"), "run", "standalone", "-alias", instance_dir.name]
        self._env = env
        self._spawn_server()

    def _spawn_server(self) -> None:
        """Run the server of the prepared instance directory (at start and at restart)."""
        assert self._instance_dir is not None and self._lock_handle is not None
        self._proc = _spawn(
            self._argv, log_path=self.log_path, cwd=self._instance_dir, env=self._env
        )
        # For the sweeper, should this process die without stop().
        os.ftruncate(self._lock_handle, 0)
        os.pwrite(self._lock_handle, f"{self._proc.pid}\n".encode(), 0)

    def _wait_ready(self) -> None:
        """Wait for ``list_collections`` to succeed, or raise with the log.

        ``/healthz`` is polled first: it is cheap and quiet, whereas every
        failed pymilvus call prints a traceback to stderr via its own handler.
        """
        assert self._proc is not None
        health_url = f"http://127.0.0.1:{self._ports['metrics_port']}/healthz"
        deadline = time.monotonic() + self._ready_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                log = self.log_path.read_text(errors="replace")
                clash = re.search(r"listen tcp \S+: bind: address already in use", log)
                if clash:
                    raise _PortClash(clash.group(0))
                raise BackendUnavailable(
                    f"Milvus server exited with code {self._proc.returncode} while "
                    f"starting.\n{self._log_excerpt()}"
                )
            try:
                with urllib.request.urlopen(health_url, timeout=2) as response:
                    healthy = b"OK" in response.read()
                if healthy:
                    client = MilvusClient(uri=self.uri, timeout=5)
                    try:
                        client.list_collections(timeout=5)
                    finally:
                        client.close()
                    return
                last_error = RuntimeError(f"{health_url} is not OK yet")
            except Exception as exc:
                last_error = exc
            time.sleep(0.2)
        raise BackendUnavailable(
            f"Milvus server at {self.uri} did not answer list_collections within "
            f"{self._ready_timeout:.0f} s (last error: {last_error!r}).\n"
            f"{self._log_excerpt()}"
        )

    def _log_excerpt(self) -> str:
        log = self.log_path
        # A Go panic is followed by thousands of goroutine-dump lines, so
        # show where it starts rather than only the end of the file.
        lines = log.read_text(errors="replace").splitlines() if log.is_file() else []
        panic_at = next((i for i, ln in enumerate(lines) if ln.startswith("panic:")), None)
        if panic_at is not None:
            excerpt = "\n".join(lines[max(0, panic_at - 30) : panic_at + 10])
        else:
            excerpt = _tail(log)
        return f"--- {log} (kept until the next start) ---\n{excerpt}"

    def _abandon(self, *, remove: bool) -> None:
        if self._proc is not None:
            assert self._instance_dir is not None
            # SIGKILL at once: the data is thrown away, and 2.3.5's graceful
            # stop hangs for minutes once a collection is loaded (rootcoord
            # stops before the proxy, which then retries it endlessly).
            _terminate(self._proc, grace=0)
            _remove_milvus_droppings(self._instance_dir.name, self._proc.pid)
            self._proc = None
        if self._lock_handle is not None:
            os.close(self._lock_handle)
            self._lock_handle = None
        if remove and self._instance_dir is not None:
            shutil.rmtree(self._instance_dir, ignore_errors=True)
        self._instance_dir = None


# ---------------------------------------------------------------------------
# MySQL / MariaDB.
# ---------------------------------------------------------------------------

MYSQL_URL_ENV = "SEARCH_TEST_MYSQL_URL"
"""Env var with a server-level SQLAlchemy URL to use instead of the defaults."""

DEFAULT_MYSQL_URL = "mysql+mysqlconnector://root@127.0.0.1:3306/"
"""The developer/CI MariaDB that normally runs on this machine."""

_CONNECT_TIMEOUT = 2  # seconds; a missing local server must not stall the run
_MARIADB_READY_TIMEOUT = 60.0
_SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")

MySQLOrigin = Literal["env", "local", "throwaway"]


@dataclass
class MySQLBackend:
    """A fresh database for one test session on some MySQL-compatible server.

    ``url`` points at that database only; :meth:`close` drops it and stops
    the throwaway server, if one was started for this session.
    """

    url: str
    """``mysql+mysqlconnector://user:pass@host:port/search_test_<hex>``."""
    server_url: str
    """The same server without a database (used to create/drop it)."""
    database: str
    origin: MySQLOrigin
    """Where the server came from: env var, local default, or throwaway."""
    _server: _MariaDBServer | None = field(default=None, repr=False)
    _closed: bool = field(default=False, repr=False)

    def kill_server(self) -> None:
        """Crash the throwaway server (SIGKILL), keeping its data and port for
        :meth:`restart_server`; clients see connections refused meanwhile."""
        self._throwaway().kill()

    def restart_server(self) -> None:
        """Start the throwaway server again on the same port with the same data (stopping
        it cleanly first if it runs): ``url`` works again once this returns."""
        self._throwaway().restart()

    def _throwaway(self) -> _MariaDBServer:
        if self._server is None:
            raise RuntimeError(
                f"only a throwaway server can be killed or restarted; this one is {self.origin}"
            )
        return self._server

    def another_database(self) -> MySQLBackend:
        """A fresh database on the same server (its ``close`` drops only that database)."""
        return _create_session_database(self.server_url, origin=self.origin)

    def close(self) -> None:
        """Drop the session database and stop the throwaway server, if any."""
        if self._closed:
            return
        self._closed = True
        try:
            engine = create_engine(
                self.server_url, connect_args={"connection_timeout": _CONNECT_TIMEOUT}
            )
            try:
                with engine.begin() as conn:
                    conn.execute(text(f"DROP DATABASE IF EXISTS `{self.database}`"))
            finally:
                engine.dispose()
        finally:
            if self._server is not None:
                self._server.stop()


def provision_mysql(
    workdir: Path,
    *,
    allow_env: bool = True,
    allow_local: bool = True,
) -> MySQLBackend:
    """Return a fresh, uniquely named database for this test session.

    Servers are tried in order: the server-level URL in ``$SEARCH_TEST_MYSQL_URL``
    (if set, it is the only candidate: an explicit choice must not silently
    fall back), then :data:`DEFAULT_MYSQL_URL`, then a throwaway ``mariadbd``
    started from the system binaries with its data under ``workdir``.
    ``allow_env``/``allow_local`` disable the first two, e.g. to test the
    throwaway path.  Raises :class:`BackendUnavailable` listing every attempt.
    """
    tried: list[str] = []
    env_url = os.environ.get(MYSQL_URL_ENV) if allow_env else None
    if env_url:
        try:
            return _create_session_database(env_url, origin="env")
        except Exception as exc:
            raise BackendUnavailable(
                f"${MYSQL_URL_ENV}={_redact(env_url)} is not usable: {exc}"
            ) from exc
    if allow_local:
        try:
            return _create_session_database(DEFAULT_MYSQL_URL, origin="local")
        except Exception as exc:
            tried.append(f"local server {DEFAULT_MYSQL_URL}: {exc}")

    server = _MariaDBServer(workdir)
    try:
        server_url = server.start()
        backend = _create_session_database(server_url, origin="throwaway")
    except Exception as exc:
        server.stop()
        tried.append(f"throwaway mariadbd: {exc}")
        raise BackendUnavailable(
            "no MySQL/MariaDB server for the tests; tried:\n  - " + "\n  - ".join(tried)
        ) from exc
    backend._server = server
    return backend


def _redact(url: str) -> str:
    """The URL without its password, for error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<not an SQLAlchemy URL>"


def _create_session_database(server_url: str, *, origin: MySQLOrigin) -> MySQLBackend:
    """Create ``search_test_<hex>`` on the server; fail within a few seconds."""
    given = make_url(server_url)
    base = URL.create(
        given.drivername,
        username=given.username,
        password=given.password,
        host=given.host,
        port=given.port,
        query=given.query,
    )
    database = f"search_test_{secrets.token_hex(6)}"
    engine = create_engine(base, connect_args={"connection_timeout": _CONNECT_TIMEOUT})
    try:
        with engine.begin() as conn:
            conn.execute(text(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4"))
    finally:
        engine.dispose()
    return MySQLBackend(
        url=base.set(database=database).render_as_string(hide_password=False),
        server_url=base.render_as_string(hide_password=False),
        database=database,
        origin=origin,
    )


def _find_program(*names: str) -> str | None:
    """Find a program on PATH or in the sbin dirs (often not on a user's PATH)."""
    search_path = os.pathsep.join([os.environ.get("PATH", ""), *_SBIN_DIRS])
    for name in names:
        found = shutil.which(name, path=search_path)
        if found:
            return found
    return None


class _MariaDBServer:
    """A throwaway ``mariadbd`` on a free 127.0.0.1 port, data under a temp dir.

    :meth:`kill` and :meth:`restart` take it down and bring it back with the same data
    and port, for fault tests; :meth:`stop` ends it for good and deletes its data.
    """

    def __init__(self, workdir: Path) -> None:
        self._workdir = Path(workdir)
        self._proc: subprocess.Popen[bytes] | None = None
        self._base: Path | None = None
        self._socket_dir: Path | None = None
        self._argv: list[str] = []
        self.port: int | None = None

    def start(self) -> str:
        """Initialise, start, create a TCP test user; return its server URL."""
        mariadbd = _find_program("mariadbd", "mysqld")
        install_db = _find_program("mariadb-install-db", "mysql_install_db")
        if mariadbd is None or install_db is None:
            raise BackendUnavailable(
                "mariadbd / mariadb-install-db not found on PATH or in "
                f"{', '.join(_SBIN_DIRS)} (Debian: apt-get install mariadb-server)"
            )
        self._workdir.mkdir(parents=True, exist_ok=True)
        base = self._base = Path(tempfile.mkdtemp(prefix="mariadb-", dir=self._workdir))
        # Unix socket paths are limited to ~107 bytes: keep it short.
        self._socket_dir = Path(tempfile.mkdtemp(prefix="mdb-"))
        sock = self._socket_dir / "mysqld.sock"
        datadir, log = base / "data", base / "mariadbd.log"
        user = getpass.getuser()

        install = subprocess.run(
            [
                install_db,
                "--no-defaults",  # must come first; ignore /etc/mysql
                f"--user={user}",
                f"--datadir={datadir}",
                "--auth-root-authentication-method=socket",
                f"--auth-root-socket-user={user}",
                "--skip-test-db",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if install.returncode != 0:
            raise BackendUnavailable(
                f"{install_db} failed ({install.returncode}):\n"
                f"{(install.stdout + install.stderr)[-3000:]}"
            )

        self._argv = [
            mariadbd,
            "--no-defaults",
            f"--user={user}",
            f"--datadir={datadir}",
            f"--socket={sock}",
            f"--pid-file={base / 'mariadbd.pid'}",
            "--bind-address=127.0.0.1",
            "--skip-name-resolve",
            "--character-set-server=utf8mb4",
        ]
        for _attempt in range(3):
            port = reserve_ports(1)[0]
            if self._launch(port):
                break
            self._terminate()  # lost a race for the port: try another
        else:
            raise BackendUnavailable(f"mariadbd could not bind a port:\n{_tail(log)}")
        self.port = port

        password = secrets.token_hex(12)
        admin = mysql.connector.connect(unix_socket=str(sock), user=user)
        try:
            cursor = admin.cursor()
            cursor.execute("CREATE USER 'search_test'@'127.0.0.1' IDENTIFIED BY %s", (password,))
            cursor.execute(
                "GRANT ALL PRIVILEGES ON *.* TO 'search_test'@'127.0.0.1' WITH GRANT OPTION"
            )
        finally:
            admin.close()
        return URL.create(
            "mysql+mysqlconnector",
            username="search_test",
            password=password,
            host="127.0.0.1",
            port=port,
        ).render_as_string(hide_password=False)

    def _launch(self, port: int) -> bool:
        """Run mariadbd on ``port``; wait until it serves. False if the port was taken."""
        assert self._base is not None and self._socket_dir is not None
        log = self._base / "mariadbd.log"
        log_start = log.stat().st_size if log.exists() else 0
        self._proc = _spawn([*self._argv, f"--port={port}"], log_path=log, cwd=self._base)
        return self._wait_ready(self._socket_dir / "mysqld.sock", log, log_start)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would; its data dir and port are kept."""
        if self._proc is not None:
            _terminate(self._proc, grace=0)
            self._proc = None

    def restart(self) -> None:
        """Stop the server cleanly if it runs, then start it again on the same port with
        the same data (InnoDB recovers what a kill left); the test user and its database
        are still there."""
        if self._base is None or self.port is None:
            raise RuntimeError("the MariaDB server was never started, or is stopped for good")
        self._terminate()
        deadline = time.monotonic() + 10  # the port is held by nobody else but us, normally
        while not self._launch(self.port):
            self._terminate()
            if time.monotonic() > deadline:
                raise BackendUnavailable(
                    f"mariadbd cannot restart: port {self.port} was taken by another program"
                )
            time.sleep(0.5)

    def _wait_ready(self, sock: Path, log: Path, log_start: int) -> bool:
        """Wait until the socket accepts logins; False if the port was taken.

        ``log_start`` is where this attempt's output begins in ``log``.
        """
        assert self._proc is not None
        deadline = time.monotonic() + _MARIADB_READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                with log.open("rb") as output:
                    output.seek(log_start)
                    if b"Address already in use" in output.read():
                        return False
                raise BackendUnavailable(
                    f"mariadbd exited with code {self._proc.returncode}:\n{_tail(log)}"
                )
            if sock.exists():
                try:
                    mysql.connector.connect(
                        unix_socket=str(sock), user=getpass.getuser(), connection_timeout=2
                    ).close()
                except mysql.connector.Error:
                    pass
                else:
                    return True
            time.sleep(0.1)
        raise BackendUnavailable(
            f"mariadbd not ready within {_MARIADB_READY_TIMEOUT:.0f} s:\n{_tail(log)}"
        )

    def _terminate(self) -> None:
        if self._proc is not None:
            _terminate(self._proc, grace=30.0)  # clean InnoDB shutdown is quick
            self._proc = None

    def stop(self) -> None:
        """Stop the server and delete its data and socket directories."""
        self._terminate()
        for path in (self._base, self._socket_dir):
            if path is not None:
                shutil.rmtree(path, ignore_errors=True)
        self._base = self._socket_dir = None
        self.port = None
