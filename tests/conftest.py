"""Fixtures: every backend-dependent test runs twice, on Milvus Lite + SQLite ("lite") and
on a real Milvus server + a real MySQL-protocol server ("server"), provisioned here."""

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, create_engine

from common.encoders.efficientnet import EfficientNetLite0Encoder
from common.encoders.minilm import MiniLMEncoder
from common.settings import Settings
from solutions.image_search.app import SOLUTION as IMAGE_SOLUTION
from solutions.image_search.settings import ImageSettings
from solutions.molecular_search.app import SOLUTION as MOLECULE_SOLUTION
from solutions.molecular_search.settings import MoleculeSettings
from solutions.qa_chatbot.app import SOLUTION, create_app
from solutions.qa_chatbot.settings import QASettings
from tests.backends import MilvusServer, MySQLBackend, provision_mysql
from tests.helpers import drop_milvus_collections

ROOT = Path(__file__).resolve().parents[1]
S = TypeVar("S", bound=Settings)


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
    drop_milvus_collections(milvus_uri)
    engine = create_engine(sql_url)
    metadata = MetaData()
    metadata.reflect(engine)
    metadata.drop_all(engine)
    engine.dispose()


def provide_backend(name: str, request: pytest.FixtureRequest, workdir: Path) -> Backend:
    if name == "lite":
        return Backend("lite", str(workdir / "milvus.db"), f"sqlite:///{workdir / 'records.db'}")
    server: MilvusServer = request.getfixturevalue("milvus_server")
    mysql: MySQLBackend = request.getfixturevalue("mysql_backend")
    _wipe_server_backends(server.uri, mysql.url)
    return Backend("server", server.uri, mysql.url)


def make_settings(backend: Backend, workdir: Path, model: type[S] = QASettings, **extra: Any) -> S:
    root = workdir / "imports"
    root.mkdir(exist_ok=True)
    values: dict[str, Any] = {
        "milvus_uri": backend.milvus_uri,
        "sql_url": backend.sql_url,
        "upload_dir": workdir / "uploads",
        "media_dir": workdir / "media",
        "data_roots": [root],
        "max_upload_bytes": 2 * 1024 * 1024,
        "load_sample_data": False,
    }
    return model(**{**values, **extra})


@pytest.fixture(params=["lite", "server"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return provide_backend(request.param, request, tmp_path)


@pytest.fixture
def settings(backend: Backend, tmp_path: Path) -> QASettings:
    return make_settings(backend, tmp_path)


@pytest.fixture
def data_root(settings: QASettings) -> Path:
    return settings.data_roots[0]


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


@pytest.fixture(scope="module", params=["lite", "server"])
def shared_qa(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, minilm: MiniLMEncoder
) -> Iterator[TestClient]:
    """One app for a whole module, for tests that each prove they changed nothing."""
    workdir = tmp_path_factory.mktemp(f"shared-{request.param}")
    settings = make_settings(provide_backend(request.param, request, workdir), workdir)
    solution = dataclasses.replace(SOLUTION, load_encoder=lambda _settings: minilm)
    with TestClient(create_app(solution, settings)) as client:
        yield client


@pytest.fixture(scope="session")
def efficientnet(tmp_path_factory: pytest.TempPathFactory) -> EfficientNetLite0Encoder:
    """The real image encoder (ONNX Runtime), exported once for the whole session."""
    return EfficientNetLite0Encoder(cache_dir=tmp_path_factory.mktemp("models"))


def image_app(settings: ImageSettings, encoder: EfficientNetLite0Encoder) -> TestClient:
    solution = dataclasses.replace(IMAGE_SOLUTION, load_encoder=lambda _settings: encoder)
    return TestClient(create_app(solution, settings))


@pytest.fixture(scope="module", params=["lite", "server"])
def shared_images(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    efficientnet: EfficientNetLite0Encoder,
) -> Iterator[TestClient]:
    """One image search app for a whole module, per backend pair."""
    workdir = tmp_path_factory.mktemp(f"images-{request.param}")
    backend = provide_backend(request.param, request, workdir)
    settings = make_settings(
        backend,
        workdir,
        ImageSettings,
        max_upload_bytes=8 * 1024 * 1024,
        image_max_pixels=40_000_000,
    )
    with image_app(settings, efficientnet) as client:
        yield client


@pytest.fixture(scope="module", params=["lite", "server"])
def shared_molecules(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """One molecular search app for a whole module, per backend pair."""
    workdir = tmp_path_factory.mktemp(f"molecules-{request.param}")
    backend = provide_backend(request.param, request, workdir)
    settings = make_settings(backend, workdir, MoleculeSettings)
    with TestClient(create_app(MOLECULE_SOLUTION, settings)) as client:
        yield client
