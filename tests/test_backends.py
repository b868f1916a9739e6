"""Tests of the backend provisioning in ``tests/backends.py``, on real servers.

They prove the provisioning works end to end (a real Milvus standalone and
real MySQL-protocol servers answering real clients) and that it cleans up
after itself, since the rest of the suite silently depends on both.
"""

from __future__ import annotations

import re
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymilvus import DataType, MilvusClient
from pymilvus.exceptions import MilvusException
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, select, text

from tests import backends
from tests.backends import (
    DEFAULT_MYSQL_URL,
    MYSQL_URL_ENV,
    BackendUnavailable,
    MilvusServer,
    MySQLBackend,
    provision_mysql,
)

pytestmark = pytest.mark.backends

CACHE_DIR = Path(__file__).resolve().parents[1] / ".cache" / "milvus-server"


def _pids_mentioning(needle: str) -> list[int]:
    """Pids of live processes whose command line contains ``needle``."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # exited meanwhile
        if needle in cmdline:
            pids.append(int(proc.name))
    return pids


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def milvus_server() -> Iterator[MilvusServer]:
    """A server of this module's own, so these tests need no conftest."""
    with MilvusServer(CACHE_DIR) as server:
        yield server


@pytest.fixture
def milvus(milvus_server: MilvusServer) -> Iterator[MilvusClient]:
    client = MilvusClient(uri=milvus_server.uri)
    yield client
    client.close()


# -- Milvus --------------------------------------------------------------------------------


def test_milvus_server_listens_on_chosen_free_ports(milvus_server: MilvusServer) -> None:
    assert milvus_server.uri == f"http://127.0.0.1:{milvus_server.port}"
    ports = milvus_server.ports
    assert len(set(ports.values())) == len(ports)
    # None of the fixed defaults that make two servers clash.
    assert {19530, 19529, 9091, 2379, 2380}.isdisjoint(ports.values())


def test_float_vector_collection_round_trip(milvus: MilvusClient) -> None:
    name = _unique("float")
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("title", DataType.VARCHAR, max_length=64)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
    index = milvus.prepare_index_params()
    index.add_index("vec", index_type="FLAT", metric_type="L2")
    # Strong: Milvus 2.3's default (Bounded) may not see rows inserted just before.
    milvus.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    try:
        rows = [{"id": i, "title": f"doc {i}", "vec": [float(i)] * 4} for i in range(5)]
        assert milvus.insert(name, rows)["insert_count"] == 5

        hits = milvus.search(name, [[3.1] * 4], limit=2, output_fields=["title"])[0]
        assert [hit["id"] for hit in hits] == [3, 4]
        assert hits[0]["entity"]["title"] == "doc 3"
        assert len(milvus.query(name, filter="id >= 2", output_fields=["id"])) == 3
    finally:
        milvus.drop_collection(name)
    assert name not in milvus.list_collections()


def test_binary_vector_collection_round_trip(milvus: MilvusClient) -> None:
    name = _unique("binary")
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("bits", DataType.BINARY_VECTOR, dim=16)
    index = milvus.prepare_index_params()
    index.add_index("bits", index_type="BIN_FLAT", metric_type="JACCARD")
    milvus.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")
    try:
        milvus.insert(
            name,
            [
                {"id": 1, "bits": bytes([0b1111_0000, 0x00])},
                {"id": 2, "bits": bytes([0b0000_1111, 0xFF])},
            ],
        )
        hits = milvus.search(
            name,
            [bytes([0b1111_0000, 0x00])],
            limit=2,
            search_params={"metric_type": "JACCARD"},
        )[0]
        assert [hit["id"] for hit in hits] == [1, 2]
        assert hits[0]["distance"] == pytest.approx(0.0)
        assert hits[1]["distance"] == pytest.approx(1.0)
    finally:
        milvus.drop_collection(name)
    assert name not in milvus.list_collections()


def test_milvus_2_3_allows_one_vector_field_per_collection(milvus: MilvusClient) -> None:
    """Pins a server limitation the apps must respect (Milvus Lite lacks it)."""
    schema = MilvusClient.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("bits", DataType.BINARY_VECTOR, dim=16)
    with pytest.raises(MilvusException, match="multiple vector fields is not supported"):
        milvus.create_collection(_unique("two_vectors"), schema=schema)


def test_second_server_runs_alongside_and_cleans_up(milvus_server: MilvusServer) -> None:
    with MilvusServer(CACHE_DIR) as other:
        assert set(other.ports.values()).isdisjoint(milvus_server.ports.values())
        name = _unique("only_here")
        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
        other_client = MilvusClient(uri=other.uri)
        other_client.create_collection(name, schema=schema)
        assert name in other_client.list_collections()
        other_client.close()
        first_client = MilvusClient(uri=milvus_server.uri)
        assert name not in first_client.list_collections()
        first_client.close()
        alias, instance_dir = other.instance_dir.name, other.instance_dir

    assert _pids_mentioning(alias) == []
    assert not instance_dir.exists()
    assert milvus_server.running


def test_failed_start_raises_with_log_and_leaves_no_process() -> None:
    server = MilvusServer(CACHE_DIR, ready_timeout=0.1)
    with pytest.raises(BackendUnavailable, match="did not answer list_collections") as failure:
        server.start()
    match = re.search(r"instances/(milvus-\w+)/logs/server\.log", str(failure.value))
    assert match, str(failure.value)
    assert _pids_mentioning(match.group(1)) == []
    assert not server.running
    # The failed server's directory is kept for inspection; later starts sweep it.
    shutil.rmtree(CACHE_DIR / "instances" / match.group(1))


# -- MySQL ---------------------------------------------------------------------------------


def _assert_usable(backend: MySQLBackend) -> None:
    """A table round-trips through SQLAlchemy in the session database only."""
    assert backend.url.endswith(f"/{backend.database}")
    assert re.fullmatch(r"search_test_[0-9a-f]{12}", backend.database)
    engine = create_engine(backend.url)
    try:
        notes = Table(
            "notes",
            MetaData(),
            Column("id", Integer, primary_key=True),
            Column("body", String(50), nullable=False),
        )
        notes.create(engine)
        with engine.begin() as conn:
            conn.execute(notes.insert(), [{"id": 1, "body": "héllo"}, {"id": 2, "body": "wörld"}])
        with engine.connect() as conn:
            assert conn.execute(select(notes.c.body).order_by(notes.c.id)).scalars().all() == [
                "héllo",
                "wörld",
            ]
            assert conn.execute(text("SELECT DATABASE()")).scalar() == backend.database
    finally:
        engine.dispose()


def _database_exists(server_url: str, database: str) -> bool:
    engine = create_engine(server_url)
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SHOW DATABASES LIKE :name"), {"name": database})
            return found.first() is not None
    finally:
        engine.dispose()


def _server_accepts(server_url: str) -> bool:
    engine = create_engine(server_url, connect_args={"connection_timeout": 2})
    try:
        with engine.connect():
            return True
    except Exception:
        return False
    finally:
        engine.dispose()


def _local_server_listening() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 3306), timeout=2).close()
    except OSError:
        return False
    return True


def test_throwaway_mariadb_and_env_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    throwaway = provision_mysql(tmp_path, allow_env=False, allow_local=False)
    try:
        assert throwaway.origin == "throwaway"
        _assert_usable(throwaway)
        # The env var path, pointed at the throwaway server.
        monkeypatch.setenv(MYSQL_URL_ENV, throwaway.server_url)
        from_env = provision_mysql(tmp_path)
        assert from_env.origin == "env"
        assert from_env.database != throwaway.database
        _assert_usable(from_env)
        from_env.close()
        assert not _database_exists(throwaway.server_url, from_env.database)
    finally:
        throwaway.close()
    assert not _server_accepts(throwaway.server_url)  # the server is gone
    assert list(tmp_path.iterdir()) == []  # and so is its data


def test_default_local_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MYSQL_URL_ENV, raising=False)
    backend = provision_mysql(tmp_path)
    try:
        # Without a local server this falls back, which the next test covers.
        assert backend.origin == ("local" if _local_server_listening() else "throwaway")
        _assert_usable(backend)
    finally:
        backend.close()
    if backend.origin == "local":
        assert not _database_exists(DEFAULT_MYSQL_URL, backend.database)


def test_falls_back_to_throwaway_without_local_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MYSQL_URL_ENV, raising=False)
    with socket.socket() as sock:  # a port that is certainly closed
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    monkeypatch.setattr(
        backends, "DEFAULT_MYSQL_URL", f"mysql+mysqlconnector://root@127.0.0.1:{closed_port}/"
    )
    backend = provision_mysql(tmp_path)
    try:
        assert backend.origin == "throwaway"
        _assert_usable(backend)
    finally:
        backend.close()


def test_unusable_env_url_fails_loudly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(MYSQL_URL_ENV, "mysql+mysqlconnector://someone:s3cret@127.0.0.1:1/")
    with pytest.raises(BackendUnavailable, match=MYSQL_URL_ENV) as failure:
        provision_mysql(tmp_path)
    assert "s3cret" not in str(failure.value)


def test_no_server_at_all_fails_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MYSQL_URL_ENV, raising=False)
    monkeypatch.setattr(backends, "DEFAULT_MYSQL_URL", "mysql+mysqlconnector://root@127.0.0.1:1/")
    monkeypatch.setattr(backends, "_find_program", lambda *names: None)
    with pytest.raises(BackendUnavailable) as failure:
        provision_mysql(tmp_path)
    message = str(failure.value)
    assert "local server mysql+mysqlconnector://root@127.0.0.1:1/" in message
    assert "mariadbd / mariadb-install-db not found" in message
