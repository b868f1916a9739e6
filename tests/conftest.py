"""Fixtures: every backend-dependent test runs twice, on Milvus Lite + SQLite ("lite") and
on a real Milvus server + a real MySQL-protocol server ("server"), provisioned here."""

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pymilvus import MilvusClient
from sqlalchemy import MetaData, create_engine

from solutions.qa_chatbot.app import SOLUTION, create_app
from solutions.qa_chatbot.encoder import MiniLMEncoder
from solutions.qa_chatbot.settings import QASettings
from tests.backends import MilvusServer, MySQLBackend, provision_mysql

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Backend:
    name: str
    milvus_uri: str
    sql_url: str


@pytest.fixture(scope="session")
def milvus_server() -> Iterator[MilvusServer]:
    with MilvusServer(ROOT / ".cache" / "milvus-server") as server:
        yield server


@pytest.fixture(scope="session")
def mysql_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MySQLBackend]:
    backend = provision_mysql(tmp_path_factory.mktemp("mysql"))
    yield backend
    backend.close()


def _wipe_server_backends(milvus_uri: str, sql_url: str) -> None:
    """Start each server test from empty stores."""
    client = MilvusClient(uri=milvus_uri)
    for name in client.list_collections():
        client.drop_collection(name)
    client.close()
    engine = create_engine(sql_url)
    metadata = MetaData()
    metadata.reflect(engine)
    metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture(params=["lite", "server"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "lite":
        return Backend("lite", str(tmp_path / "milvus.db"), f"sqlite:///{tmp_path / 'records.db'}")
    server: MilvusServer = request.getfixturevalue("milvus_server")
    mysql: MySQLBackend = request.getfixturevalue("mysql_backend")
    _wipe_server_backends(server.uri, mysql.url)
    return Backend("server", server.uri, mysql.url)


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "imports"
    root.mkdir()
    return root


@pytest.fixture
def settings(backend: Backend, tmp_path: Path, data_root: Path) -> QASettings:
    return QASettings(
        milvus_uri=backend.milvus_uri,
        sql_url=backend.sql_url,
        upload_dir=tmp_path / "uploads",
        data_roots=[data_root],
        max_upload_bytes=2 * 1024 * 1024,
        load_sample_data=False,
    )


@pytest.fixture(scope="session")
def minilm() -> MiniLMEncoder:
    """The real encoder, loaded once for the whole session."""
    return MiniLMEncoder()


@pytest.fixture
def qa_solution(minilm: MiniLMEncoder):  # type: ignore[no-untyped-def]
    return dataclasses.replace(SOLUTION, load_encoder=lambda _settings: minilm)


@pytest.fixture
def qa(qa_solution, settings: QASettings) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(create_app(qa_solution, settings)) as client:
        yield client
