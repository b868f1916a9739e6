"""Small helpers the tests share."""

import dataclasses
import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi.testclient import TestClient
from pymilvus import MilvusClient

from common.collection import Collection
from common.encoders import Encoder
from common.record_store import READY
from common.settings import Settings
from common.solution import Solution

S = TypeVar("S", bound=Settings)


def use_embedded_storage(
    monkeypatch: pytest.MonkeyPatch, folder: Path, *, load_sample: bool
) -> None:
    """Point every app started from now on at a fresh Milvus Lite + SQLite in ``folder``."""
    for name, value in {
        "SEARCH_MILVUS_URI": str(folder / "milvus.db"),
        "SEARCH_SQL_URL": f"sqlite:///{folder / 'records.db'}",
        "SEARCH_UPLOAD_DIR": str(folder / "uploads"),
        "SEARCH_MEDIA_DIR": str(folder / "media"),
        "SEARCH_LOAD_SAMPLE_DATA": str(load_sample).lower(),
    }.items():
        monkeypatch.setenv(name, value)


def with_encoder(solution: Solution[S], encoder: Encoder) -> Solution[S]:
    """The app, using an encoder loaded once (a session fixture) rather than its own."""
    return dataclasses.replace(solution, load_encoder=lambda _settings: encoder)


def with_encoders(
    solutions: Iterable[Solution[Any]], encoders: Mapping[str, Encoder]
) -> list[Solution[Any]]:
    """The apps, using the session's encoders (by namespace) rather than loading a copy each."""
    return [
        with_encoder(s, encoders[s.namespace]) if s.namespace in encoders else s for s in solutions
    ]


def drop_milvus_collections(uri: str) -> None:
    """Empty a Milvus server, for a test that must start from nothing."""
    client = MilvusClient(uri=uri)
    try:
        for name in client.list_collections():
            client.drop_collection(name)
    finally:
        client.close()


# An app in this process (TestClient) or a server's address (httpx.Client with a base URL).
HTTP = TestClient | httpx.Client


def wait_for_job(
    client: HTTP, job_id: str, timeout: float = 120, prefix: str = ""
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"{prefix}/jobs/{job_id}").json()
        if job["status"] in {"succeeded", "failed", "cancelled"}:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s: {job}")


def store_ids(collection: Collection) -> tuple[set[int], set[int], int]:
    """(ids in Milvus, ids in SQL, Milvus entity count) of one collection."""
    storage = collection.storage
    milvus_ids = storage.vectors.all_ids(collection.physical)
    sql_ids = storage.records.all_ids(collection.table)
    return milvus_ids, sql_ids, storage.vectors.count(collection.physical)


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message", "details", "request_id"} <= set(body["error"]), body
    return body["error"]


def snapshot(client: TestClient) -> dict[str, Any]:
    """Everything both stores hold for an app: to prove a rejected request changed nothing."""
    context = client.app.state.context  # type: ignore[attr-defined]
    storage = context.storage
    state: dict[str, Any] = {
        "milvus_collections": sorted(storage.vectors.client.list_collections()),
        "collections": context.collections.names(),
    }
    for name in state["collections"]:
        collection = context.collections.get(name)
        milvus_ids, sql_ids, milvus_count = store_ids(collection)
        assert milvus_ids == sql_ids and milvus_count == len(sql_ids), name
        if collection.lexical is not None:  # the full-text index holds exactly the ready ids
            ready = storage.records.ids_in_state(collection.table, READY)
            assert collection.lexical.ids() == set(ready), name
        state[name] = sorted(sql_ids)
    return state


def sse_events(client: HTTP, url: str) -> list[tuple[str, dict[str, Any]]]:
    """Read a Server-Sent Events stream to its end: [(event, data), ...]."""
    events: list[tuple[str, dict[str, Any]]] = []
    event = "message"
    with client.stream("GET", url) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((event, json.loads(line.split(":", 1)[1])))
                if event == "end":
                    break
    return events


def assert_documented(client: TestClient) -> None:
    """Every operation has a summary, JSON bodies have examples, errors use ErrorResponse."""
    spec = client.get("/openapi.json").json()
    assert spec["info"]["description"].strip()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), (method, path)
            if "requestBody" in operation and "json" in str(operation["requestBody"]):
                schema = json.dumps(operation["requestBody"])
                ref = schema.split('"$ref": "#/components/schemas/')[-1].split('"')[0]
                assert (
                    "example" in json.dumps(spec["components"]["schemas"].get(ref, {}))
                    or "example" in schema
                ), (method, path)
            errors = [code for code in operation["responses"] if code.startswith(("4", "5"))]
            for code in errors:
                content = json.dumps(operation["responses"][code])
                assert "ErrorResponse" in content or code == "503", (method, path, code)
    assert "HTTPValidationError" not in json.dumps(spec)  # 422s document the real body
