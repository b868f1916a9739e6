"""Units of the shared layer that need no backend: settings, files, parsers, encoder."""

import dataclasses
import io
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from common.app import create_app
from common.encoders import model_dir, model_package
from common.encoders.minilm import MiniLMEncoder
from common.errors import Forbidden, InvalidInput, MissingModel, NotFound, PayloadTooLarge
from common.files import resolve_under_roots, store_upload
from common.loading import prefetch
from common.parsers import CsvParser, JsonLinesParser
from common.settings import Settings
from solutions.qa_chatbot.app import SOLUTION
from solutions.qa_chatbot.items import QAPair
from solutions.qa_chatbot.settings import QASettings


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEARCH_DATA_ROOTS", "/srv/a, /srv/b")
    monkeypatch.setenv("SEARCH_CORS_ORIGINS", "http://localhost:3000")
    monkeypatch.setenv("SEARCH_MILVUS_TOKEN", "admin:s3cr3t")
    monkeypatch.setenv("SEARCH_QA_MIN_SCORE", "0.7")
    settings = QASettings()
    assert settings.data_roots == [Path("/srv/a"), Path("/srv/b")]
    assert settings.cors_origins == ["http://localhost:3000"]
    assert settings.milvus_token is not None and "s3cr3t" not in repr(settings)
    assert settings.qa_min_score == 0.7
    assert settings.host == "127.0.0.1"
    monkeypatch.setenv("SEARCH_QA_MIN_SCORE", "2")
    with pytest.raises(ValueError, match="qa_min_score"):
        QASettings()


def test_uploads_get_generated_names_and_a_size_limit(tmp_path: Path) -> None:
    stored = store_upload(io.BytesIO(b"abc"), tmp_path, ".csv", max_bytes=10)
    assert stored.parent == tmp_path and stored.suffix == ".csv" and len(stored.stem) == 32
    with pytest.raises(PayloadTooLarge):
        store_upload(io.BytesIO(b"x" * 11), tmp_path, ".csv", max_bytes=10)
    with pytest.raises(InvalidInput):
        store_upload(io.BytesIO(b"x"), tmp_path, "/../x", max_bytes=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == [stored.name]  # nothing partial left


def test_paths_resolve_only_inside_the_roots(tmp_path: Path) -> None:
    root, other = tmp_path / "root", tmp_path / "other"
    (root / "sub").mkdir(parents=True)
    other.mkdir()
    (root / "sub" / "a.csv").write_text("x")
    (other / "b.csv").write_text("x")
    (root / "escape").symlink_to(other)
    (root / "inside").symlink_to(root / "sub")
    assert resolve_under_roots("sub/a.csv", [root]) == (root / "sub" / "a.csv").resolve()
    assert resolve_under_roots(str(root / "sub" / "a.csv"), [root]).name == "a.csv"
    assert resolve_under_roots("inside/a.csv", [root]).name == "a.csv"
    for bad in [
        "../other/b.csv",
        "sub/../../other/b.csv",
        str(other / "b.csv"),
        "escape/b.csv",
        "/etc/passwd",
    ]:
        with pytest.raises(Forbidden):
            resolve_under_roots(bad, [root])
    with pytest.raises(NotFound):
        resolve_under_roots("sub/missing.csv", [root])
    with pytest.raises(InvalidInput):
        resolve_under_roots("a\x00b", [root])
    with pytest.raises(Forbidden):
        resolve_under_roots("sub/a.csv", [])


def test_csv_quirks(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_bytes(
        b"\xef\xbb\xbfQuestion , ANSWER\r\n"
        b'"multi\r\nline question?","an answer, with a comma"\r\n'
        b"\r\n"
        b"second?,two\r\n"
    )
    parser = CsvParser(QAPair)
    parser.check(path)
    items = list(parser.parse(path))
    assert [i.error for i in items] == [None, None]
    assert items[0].value == QAPair(
        question="multi\r\nline question?", answer="an answer, with a comma"
    )
    assert items[1].item == "line 5"


def test_jsonl_check_and_parse(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('\n{"question": "a?", "answer": "b"}\n{"question": 3}\n', encoding="utf-8")
    parser = JsonLinesParser(QAPair)
    parser.check(path)
    items = list(parser.parse(path))
    assert items[0].value is not None and items[0].item == "line 2"
    assert items[1].error is not None and "question" in items[1].error
    # Only "\n" ends a line: U+2028 inside a JSON string is not a line break.
    path.write_text(
        json.dumps({"question": "a\u2028b?", "answer": "c"}, ensure_ascii=False)
        + "\r\n"
        + '{"question": "d?", "answer": "e"}\n',
        encoding="utf-8",
    )
    items = list(parser.parse(path))
    assert [i.item for i in items] == ["line 1", "line 2"] and all(i.value for i in items)
    path.write_text('["a list"]\n')
    with pytest.raises(InvalidInput):
        parser.check(path)


def test_missing_model_package_is_a_clear_startup_error(tmp_path: Path) -> None:
    with pytest.raises(MissingModel, match="pip install no-such-model-package"):
        model_package("no_such_model_package", pip_name="no-such-model-package")
    with pytest.raises(MissingModel, match=r"model\.safetensors"):
        model_dir(tmp_path, pip_name="x", required=("model.safetensors",))

    def missing(_: Settings) -> MiniLMEncoder:
        model_package("no_such_model_package", pip_name="no-such-model-package")
        raise AssertionError

    settings = QASettings(
        milvus_uri=str(tmp_path / "m.db"),
        sql_url=f"sqlite:///{tmp_path / 'r.db'}",
        load_sample_data=False,
    )
    app = create_app(dataclasses.replace(SOLUTION, load_encoder=missing), settings)
    with pytest.raises(MissingModel), TestClient(app):
        pass


def test_minilm_vectors(minilm: MiniLMEncoder) -> None:
    texts = ["short", "a much longer sentence about vector databases and search", "mid length"]
    together = minilm.encode(texts)
    assert together.shape == (3, 384) and together.dtype == np.float32
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    one_by_one = np.vstack([minilm.encode([t]) for t in texts])
    assert np.allclose(together, one_by_one, atol=1e-5)  # batching and sorting keep the order
    similar = minilm.encode(
        [
            "How do I reset my password?",
            "I forgot my password, what now?",
            "The tomato harvest was early this year.",
        ]
    )
    assert similar[0] @ similar[1] > 0.6 > similar[0] @ similar[2]


def test_cors_allows_only_the_configured_origins(tmp_path: Path, qa_solution) -> None:  # type: ignore[no-untyped-def]
    settings = QASettings(
        milvus_uri=str(tmp_path / "m.db"),
        sql_url=f"sqlite:///{tmp_path}/r.db",
        load_sample_data=False,
        cors_origins=["http://good.example"],
    )
    preflight = {"Access-Control-Request-Method": "POST"}
    with TestClient(create_app(qa_solution, settings)) as client:
        good = client.options(
            "/collections", headers={**preflight, "Origin": "http://good.example"}
        )
        assert good.headers["access-control-allow-origin"] == "http://good.example"
        bad = client.options("/collections", headers={**preflight, "Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in bad.headers
        plain = client.get("/health/live", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in plain.headers
    no_cors = settings.model_copy(update={"cors_origins": []})
    with TestClient(create_app(qa_solution, no_cors)) as client:
        response = client.get("/health/live", headers={"Origin": "http://good.example"})
        assert "access-control-allow-origin" not in response.headers


def test_prefetch_keeps_order_raises_errors_and_stops_early() -> None:
    assert list(prefetch(iter(range(100)), ahead=3)) == list(range(100))

    def failing() -> Iterator[int]:
        yield 1
        raise RuntimeError("broken source")

    with pytest.raises(RuntimeError, match="broken source"):
        list(prefetch(failing(), ahead=2))

    produced: list[int] = []

    def endless() -> Iterator[int]:
        for number in itertools.count():
            produced.append(number)
            yield number

    consumer = prefetch(endless(), ahead=2)
    assert [next(consumer) for _ in range(5)] == [0, 1, 2, 3, 4]
    consumer.close()
    settled = len(produced)
    time.sleep(0.2)
    assert len(produced) == settled <= 5 + 2 + 2  # the producer stopped


def test_unexpected_errors_keep_the_shape_the_request_id_and_cors(
    tmp_path: Path, qa_solution
) -> None:  # type: ignore[no-untyped-def]
    settings = QASettings(
        milvus_uri=str(tmp_path / "m.db"),
        sql_url=f"sqlite:///{tmp_path}/r.db",
        load_sample_data=False,
        cors_origins=["http://good.example"],
    )
    app = create_app(qa_solution, settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom", headers={"Origin": "http://good.example"})
        assert response.status_code == 500
        body = response.json()["error"]
        assert body["code"] == "internal_error" and "a bug" not in body["message"]
        assert response.headers["x-request-id"] == body["request_id"] != "-"
        assert response.headers["access-control-allow-origin"] == "http://good.example"
        assert client.get("/health/live").status_code == 200
