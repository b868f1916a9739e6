"""Races, bounds and access on both backend pairs: a drop against a load or a query, full
queues and upload folders, write access, and what a failed job tells its user."""

import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Annotated, Any

import pytest
from fastapi import Header
from fastapi.testclient import TestClient
from pydantic import SecretStr

from common.access import authorize_write
from common.app import create_app
from common.errors import Unauthorized
from solutions.qa_chatbot.settings import QASettings
from solutions.qa_chatbot.tests.fixtures import generated_pairs
from tests.helpers import error_of, wait_for_job

QAWith = Callable[..., AbstractContextManager[TestClient]]
PAIR = {"question": "Is this stored?", "answer": "Yes."}
# What a job's error may never show: exception names, SQL, stack frames, backend internals.
INTERNALS = re.compile(r"Exception|Error:|Traceback|SELECT|INSERT|DELETE FROM|WAL|qa_faq|\.py")


def csv_of(pairs: list[tuple[str, str]]) -> bytes:
    lines = ["question,answer", *(f'"{q}","{a}"' for q, a in pairs)]
    return "\n".join(lines).encode()


def upload(client: TestClient, body: bytes, collection: str = "faq") -> dict:
    response = client.post(
        f"/collections/{collection}/loads", files={"file": ("pairs.csv", body, "text/csv")}
    )
    assert response.status_code == 202, response.text
    return response.json()


def test_a_drop_is_refused_while_a_load_writes_and_works_once_it_ends(qa: TestClient) -> None:
    job = upload(qa, csv_of(generated_pairs(1500, seed=1)))
    refused = qa.delete("/collections/faq")
    assert refused.status_code == 409, refused.text
    error = error_of(refused)
    assert error["code"] == "conflict" and job["id"] in error["message"]
    assert "cancel" in error["message"]
    assert qa.post(f"/jobs/{job['id']}/cancel").status_code == 202
    ended = wait_for_job(qa, job["id"])
    assert ended["status"] == "cancelled"
    assert qa.delete("/collections/faq").status_code == 204
    assert qa.get("/collections/faq").status_code == 404


def test_a_query_that_meets_a_dropped_collection_gets_404(qa: TestClient) -> None:
    """The drop landed between finding the collection and searching it (as when an ask
    races a DELETE): the stores say "no such collection", the client gets 404."""
    assert qa.post("/collections/faq/items", json=PAIR).status_code == 201
    context = qa.app.state.context  # type: ignore[attr-defined]
    collection = context.collections.get("faq")
    context.storage.vectors.drop(collection.physical)  # behind the registry's back
    asked = qa.post("/collections/faq/ask", json={"question": "stored?"})
    assert asked.status_code == 404, asked.text
    assert error_of(asked)["code"] == "not_found"
    context.storage.records.drop_table(collection.table)
    listed = qa.get("/collections/faq/items")
    assert listed.status_code == 404, listed.text
    assert error_of(listed)["code"] == "not_found"
    assert qa.get("/health/live").status_code == 200


def test_a_job_that_fails_says_why_in_a_sentence(qa: TestClient) -> None:
    assert qa.post("/collections/faq/items", json=PAIR).status_code == 201
    context = qa.app.state.context  # type: ignore[attr-defined]
    collection = context.collections.get("faq")
    context.storage.vectors.drop(collection.physical)
    job = wait_for_job(qa, upload(qa, csv_of(generated_pairs(20, seed=2)))["id"])
    assert job["status"] == "failed"
    assert job["error"] == "The collection was dropped during the load."
    assert not INTERNALS.search(job["error"])


@pytest.fixture
def qa_with(qa_solution, settings: QASettings) -> QAWith:  # type: ignore[no-untyped-def]
    """The QA app started with some settings changed: ``with qa_with(api_key=...) as c:``."""

    @contextmanager
    def started(**changes: Any) -> Iterator[TestClient]:
        with TestClient(create_app(qa_solution, settings.model_copy(update=changes))) as client:
            yield client

    return started


def test_loads_beyond_the_queue_get_429_and_create_nothing(qa_with: QAWith) -> None:
    with qa_with(max_queued_jobs=1) as client:
        upload(client, csv_of(generated_pairs(1500, seed=3)))  # keeps the worker busy
        answers = [client.post("/collections/faq/loads/sample") for _ in range(3)]
        refused = [a for a in answers if a.status_code == 429]
        assert refused, [a.status_code for a in answers]
        assert {a.status_code for a in answers} <= {202, 429}
        for answer in refused:
            assert error_of(answer)["code"] == "too_many_jobs"
            assert int(answer.headers["retry-after"]) > 0
        accepted = 1 + sum(a.status_code == 202 for a in answers)
        jobs = client.get("/jobs").json()
        assert len(jobs) == accepted  # a refused load left no job behind
        for job in jobs:
            wait_for_job(client, job["id"], timeout=300)


def test_an_upload_over_the_upload_folder_limit_gets_507(
    qa_with: QAWith, settings: QASettings
) -> None:
    with qa_with(max_upload_dir_bytes=1000) as client:
        body = csv_of(generated_pairs(200, seed=4))
        assert len(body) > 1000
        refused = client.post(
            "/collections/faq/loads", files={"file": ("pairs.csv", body, "text/csv")}
        )
        assert refused.status_code == 507, refused.text
        assert error_of(refused)["code"] == "insufficient_storage"
        assert int(refused.headers["retry-after"]) > 0
        uploads = settings.upload_dir
        assert not uploads.exists() or not any(uploads.iterdir())
        assert client.get("/jobs").json() == []
        small = csv_of(generated_pairs(3, seed=5))
        assert wait_for_job(client, upload(client, small)["id"])["added"] == 3


def test_with_an_api_key_writes_need_it_and_reads_do_not(qa_with: QAWith) -> None:
    with qa_with(api_key=SecretStr("open-sesame")) as client:
        writes = [
            lambda h: client.post("/collections", json={"name": "kept"}, headers=h),
            lambda h: client.post("/collections/faq/items", json=PAIR, headers=h),
            lambda h: client.post("/collections/faq/loads/sample", headers=h),
            lambda h: client.delete("/collections/kept", headers=h),
        ]
        for write in writes:
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                refused = write(headers)
                assert refused.status_code == 401, refused.text
                assert error_of(refused)["code"] == "unauthorized"
                assert refused.headers["www-authenticate"] == "Bearer"
        assert client.get("/collections").json() == []  # nothing was written
        key = {"Authorization": "Bearer open-sesame"}
        assert [w(key).status_code for w in writes] == [201, 201, 202, 204]
        asked = client.post("/collections/faq/ask", json={"question": "stored?"})
        assert asked.status_code == 200  # searches stay open
        assert client.get("/collections/faq/items").status_code == 200
        spec = client.get("/openapi.json").json()
        create = spec["paths"]["/collections"]["post"]
        assert create["security"] and "401" in create["responses"]
        assert "security" not in spec["paths"]["/collections/{name}/ask"]["post"]


def test_a_deployment_replaces_write_access_with_its_own_dependency(
    qa_solution,
    settings: QASettings,  # type: ignore[no-untyped-def]
) -> None:
    seen: list[str] = []

    async def only_admins(x_role: Annotated[str, Header()] = "") -> None:  # set by a proxy, say
        seen.append(x_role)
        if x_role != "admin":
            raise Unauthorized("admins only")

    app = create_app(qa_solution, settings)
    app.dependency_overrides[authorize_write] = only_admins
    with TestClient(app) as client:
        assert client.post("/collections", json={"name": "a"}).status_code == 401
        created = client.post("/collections", json={"name": "a"}, headers={"x-role": "admin"})
        assert created.status_code == 201
        assert client.get("/collections/a").status_code == 200
    assert seen == ["", "admin"]
