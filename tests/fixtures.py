"""Fixtures every app's tests share: each backend-dependent test runs twice, on Milvus Lite +
SQLite ("lite") and on a real Milvus server + a real MySQL-protocol server ("server"),
provisioned here, and the shared encoders are loaded once per session.

The root ``conftest.py`` loads this module and each app's ``tests/fixtures.py``.
"""

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from common.collection import Storage
from common.encoders.e5 import E5Encoder
from common.encoders.efficientnet import EfficientNetLite0Encoder
from common.encoders.minilm import MiniLMEncoder
from common.media import MediaStore
from common.record_store import RecordStore
from common.settings import Settings
from common.vector_store import VectorStore
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


@pytest.fixture
def own_milvus() -> Iterator[MilvusServer]:
    """A Milvus server of this test's own, which it may kill and restart."""
    with MilvusServer(ROOT / ".cache" / "milvus-server") as server:
        yield server


@pytest.fixture
def own_mysql(tmp_path: Path) -> Iterator[MySQLBackend]:
    """A throwaway MariaDB of this test's own, which it may kill, restart or stop."""
    backend = provision_mysql(tmp_path / "mysql", allow_env=False, allow_local=False)
    yield backend
    with contextlib.suppress(Exception):  # the test stopped the server: nothing to drop
        backend.close()
    if backend._server is not None:
        backend._server.stop()


def provide_backend(
    name: str,
    request: pytest.FixtureRequest,
    workdir: Path,
    lasting: contextlib.ExitStack | None = None,
) -> Backend:
    """Empty stores of the pair ``name``: files in ``workdir`` for "lite"; for "server", the
    shared Milvus server emptied and a database of its own on the shared MySQL server (an
    app of an earlier test that is still alive, e.g. a module's shared app, keeps its own
    database: two apps of one namespace on one database share its job queue). The database
    is dropped when the test ends, or when ``lasting`` closes for stores that outlive it."""
    if name == "lite":
        return Backend("lite", str(workdir / "milvus.db"), f"sqlite:///{workdir / 'records.db'}")
    server: MilvusServer = request.getfixturevalue("milvus_server")
    mysql: MySQLBackend = request.getfixturevalue("mysql_backend")
    drop_milvus_collections(server.uri)
    database = mysql.another_database()
    if lasting is None:
        request.addfinalizer(database.close)
    else:
        lasting.callback(database.close)
    return Backend("server", server.uri, database.url)


def make_settings(backend: Backend, workdir: Path, model: type[S], **extra: Any) -> S:
    """An app's settings on ``backend``, with its folders in ``workdir`` and no sample preload."""
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
    """Each test that takes this runs once per backend pair."""
    return provide_backend(request.param, request, tmp_path)


@pytest.fixture
def storage(backend: Backend, tmp_path: Path) -> Iterator[Storage]:
    """The shared layer's two stores (and a media folder) on each backend pair."""
    store = Storage(
        VectorStore(backend.milvus_uri),
        RecordStore(backend.sql_url),
        MediaStore(tmp_path / "media"),
    )
    yield store
    store.close()


@pytest.fixture(scope="session")
def minilm(tmp_path_factory: pytest.TempPathFactory) -> MiniLMEncoder:
    """The shared text encoder (ONNX Runtime), exported once for the whole session."""
    return MiniLMEncoder(cache_dir=tmp_path_factory.mktemp("text-models"))


@pytest.fixture(scope="session")
def e5() -> E5Encoder:
    """The shared multilingual text encoder, loaded once for the whole session."""
    return E5Encoder()


@pytest.fixture(scope="session")
def efficientnet(tmp_path_factory: pytest.TempPathFactory) -> EfficientNetLite0Encoder:
    """The shared image encoder (ONNX Runtime), exported once for the whole session."""
    return EfficientNetLite0Encoder(cache_dir=tmp_path_factory.mktemp("models"))
