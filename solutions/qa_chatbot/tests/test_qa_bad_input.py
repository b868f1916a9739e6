"""Bad input: the documented status and error shape, both stores unchanged, still serving."""

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from tests.helpers import error_of, snapshot, wait_for_job

PAIR = {"question": "What is a stored question?", "answer": "One the bot knows."}


@pytest.fixture(scope="module")
def loaded(shared_qa: TestClient) -> Iterator[TestClient]:
    """An app with one collection holding one pair, so 'unchanged' means something.

    Every test here proves it changed nothing, so they can share one app per backend pair.
    """
    assert shared_qa.post("/collections/faq/items", json=PAIR).status_code == 201
    yield shared_qa


def upload(client: TestClient, name: str, content: bytes, collection: str = "faq") -> Response:
    return client.post(
        f"/collections/{collection}/loads",
        files={"file": (name, content, "application/octet-stream")},
    )


CASES: dict[str, tuple[Callable[[TestClient], Response], int, str]] = {
    "empty question": (
        lambda c: c.post("/collections/faq/ask", json={"question": ""}),
        422,
        "invalid_input",
    ),
    "whitespace question": (
        lambda c: c.post("/collections/faq/ask", json={"question": " \t\n "}),
        422,
        "invalid_input",
    ),
    "missing question": (lambda c: c.post("/collections/faq/ask", json={}), 422, "invalid_input"),
    "question too long": (
        lambda c: c.post("/collections/faq/ask", json={"question": "why " * 300}),
        422,
        "invalid_input",
    ),
    "top_k 0": (
        lambda c: c.post("/collections/faq/ask", json={"question": "q?", "top_k": 0}),
        422,
        "invalid_input",
    ),
    "top_k 10000": (
        lambda c: c.post("/collections/faq/ask", json={"question": "q?", "top_k": 10_000}),
        422,
        "invalid_input",
    ),
    "min_score 7": (
        lambda c: c.post("/collections/faq/ask", json={"question": "q?", "min_score": 7}),
        422,
        "invalid_input",
    ),
    "not JSON": (
        lambda c: c.post(
            "/collections/faq/ask",
            content=b"{question:",
            headers={"content-type": "application/json"},
        ),
        422,
        "invalid_input",
    ),
    "CSV missing a column": (
        lambda c: upload(c, "x.csv", b"question,reply\nq?,a\n"),
        422,
        "invalid_input",
    ),
    "CSV header only, no columns": (
        lambda c: upload(c, "x.csv", b"\n\nq?,a\n"),
        422,
        "invalid_input",
    ),
    "UTF-16 file": (
        lambda c: upload(c, "x.csv", "question,answer\nq?,a\n".encode("utf-16")),
        422,
        "invalid_input",
    ),
    "Latin-1 header": (
        lambda c: upload(c, "x.csv", "qu\u00e9stion,answer\n".encode("latin-1")),
        422,
        "invalid_input",
    ),
    "empty file": (lambda c: upload(c, "x.csv", b""), 422, "invalid_input"),
    "blank file": (lambda c: upload(c, "x.jsonl", b"\n \n"), 422, "invalid_input"),
    "JSONL that is not JSON": (
        lambda c: upload(c, "x.jsonl", b"question,answer\n"),
        422,
        "invalid_input",
    ),
    "unsupported type": (lambda c: upload(c, "x.pdf", b"%PDF-1.4"), 415, "unsupported_media_type"),
    "no file name": (lambda c: upload(c, "", b"question,answer\nq?,a\n"), 422, "invalid_input"),
    "no file part": (
        lambda c: c.post("/collections/faq/loads", data={"x": "1"}),
        422,
        "invalid_input",
    ),
    "upload over the limit": (
        lambda c: upload(c, "x.csv", b"question,answer\n" + b"q?,a\n" * 500_000),
        413,
        "payload_too_large",
    ),
    "unknown collection: ask": (
        lambda c: c.post("/collections/nope/ask", json={"question": "q"}),
        404,
        "not_found",
    ),
    "unknown collection: describe": (lambda c: c.get("/collections/nope"), 404, "not_found"),
    "unknown collection: items": (lambda c: c.get("/collections/nope/items"), 404, "not_found"),
    "unknown collection: drop": (lambda c: c.delete("/collections/nope"), 404, "not_found"),
    "unknown item": (lambda c: c.get("/collections/faq/items/12345"), 404, "not_found"),
    "item id over 63 bits": (
        lambda c: c.get("/collections/faq/items/9223372036854775808"),
        422,
        "invalid_input",
    ),
    "negative item id": (lambda c: c.get("/collections/faq/items/-1"), 422, "invalid_input"),
    "item id not a number": (lambda c: c.get("/collections/faq/items/abc"), 422, "invalid_input"),
    "delete unknown item": (lambda c: c.delete("/collections/faq/items/12345"), 404, "not_found"),
    "add with empty answer": (
        lambda c: c.post("/collections/faq/items", json={"question": "q?", "answer": " "}),
        422,
        "invalid_input",
    ),
    "add existing pair": (lambda c: c.post("/collections/faq/items", json=PAIR), 409, "conflict"),
    "create existing collection": (
        lambda c: c.post("/collections", json={"name": "faq"}),
        409,
        "conflict",
    ),
    "injection in name": (
        lambda c: c.post("/collections", json={"name": "x; DROP TABLE y"}),
        422,
        "invalid_input",
    ),
    "path outside roots": (
        lambda c: c.post("/collections/faq/loads/path", json={"path": "/etc/passwd"}),
        403,
        "forbidden",
    ),
    "path with ..": (
        lambda c: c.post("/collections/faq/loads/path", json={"path": "../../etc/passwd"}),
        403,
        "forbidden",
    ),
    "path missing": (
        lambda c: c.post("/collections/faq/loads/path", json={"path": "nope.csv"}),
        404,
        "not_found",
    ),
    "path with a 300-character name": (
        lambda c: c.post("/collections/faq/loads/path", json={"path": "n" * 300 + ".csv"}),
        404,
        "not_found",
    ),
    "path 1,500 folders deep": (
        lambda c: c.post("/collections/faq/loads/path", json={"path": "d/" * 1500 + "x.csv"}),
        404,
        "not_found",
    ),
    "path of 100,000 characters": (
        lambda c: c.post("/collections/faq/loads/path", json={"path": "p" * 100_000}),
        422,
        "invalid_input",
    ),
    "page offset 2**63": (
        lambda c: c.get("/collections/faq/items", params={"offset": 2**63}),
        422,
        "invalid_input",
    ),
    "page offset 2**64": (
        lambda c: c.get("/collections/faq/items", params={"offset": 2**64}),
        422,
        "invalid_input",
    ),
    "1,001 files in one upload": (
        lambda c: c.post(
            "/collections/faq/loads",
            files=[("file", (f"{i}.csv", b"question,answer\nq?,a\n")) for i in range(1001)],
        ),
        400,
        "bad_request",
    ),
    "path empty": (
        lambda c: c.post("/collections/faq/loads/path", json={"path": " "}),
        422,
        "invalid_input",
    ),
    "ask: unknown mode": (
        lambda c: c.post("/collections/faq/ask", json={"question": "q?", "mode": "semantic"}),
        422,
        "invalid_input",
    ),
    "ask: unknown fusion": (
        lambda c: c.post("/collections/faq/ask", json={"question": "q?", "fusion": "max"}),
        422,
        "invalid_input",
    ),
    "ask lexical: no words": (
        lambda c: c.post("/collections/faq/ask", json={"question": '?! "* -', "mode": "lexical"}),
        422,
        "invalid_input",
    ),
    "search: empty query": (
        lambda c: c.post("/collections/faq/search", json={"query": ""}),
        422,
        "invalid_input",
    ),
    "search: whitespace query": (
        lambda c: c.post("/collections/faq/search", json={"query": " \t ", "mode": "lexical"}),
        422,
        "invalid_input",
    ),
    "search: 10,000 characters": (
        lambda c: c.post("/collections/faq/search", json={"query": "nprobe " * 1429}),
        422,
        "invalid_input",
    ),
    "search lexical: no words": (
        lambda c: c.post("/collections/faq/search", json={"query": "(((", "mode": "lexical"}),
        422,
        "invalid_input",
    ),
    "search: unknown mode": (
        lambda c: c.post("/collections/faq/search", json={"query": "q", "mode": "bm25"}),
        422,
        "invalid_input",
    ),
    "search: unknown collection": (
        lambda c: c.post("/collections/nope/search", json={"query": "q"}),
        404,
        "not_found",
    ),
    "create: unknown encoder": (
        lambda c: c.post("/collections", json={"name": "x", "options": {"encoder": "bert"}}),
        422,
        "invalid_input",
    ),
    "create: unknown option": (
        lambda c: c.post("/collections", json={"name": "x", "options": {"dim": 768}}),
        422,
        "invalid_input",
    ),
    "unknown route": (lambda c: c.get("/nope"), 404, "not_found"),
    "wrong method": (lambda c: c.put("/collections/faq"), 405, "method_not_allowed"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input(loaded: TestClient, case: str) -> None:
    before = snapshot(loaded)
    call, status, code = CASES[case]
    response = call(loaded)
    assert response.status_code == status, response.text
    error = error_of(response)
    assert error["code"] == code and error["message"]
    assert response.headers["x-request-id"] == error["request_id"]
    assert snapshot(loaded) == before
    assert loaded.get("/health/live").status_code == 200
    uploads = loaded.app.state.context.settings.upload_dir  # type: ignore[attr-defined]
    assert not uploads.exists() or os.listdir(uploads) == []  # rejected uploads are removed


ODD_QUERIES = [  # (a query of no words at all is in CASES: 422 in mode lexical)
    'what is a "stored',
    '"what is a stored',
    "stored*",
    "NEAR(stored question)",
    "stored OR",
    "-stored",
    "question)",
    "a\x00b\x07c\x1b[31m",
    "What is 一个 stored вопрос?",  # mixed scripts
    "这个机器人知道哪些问题",  # a language all-MiniLM-L6-v2 was not trained on
]


@pytest.mark.parametrize("query", ODD_QUERIES)
def test_odd_queries_are_answered_and_change_nothing(loaded: TestClient, query: str) -> None:
    """FTS operators are words (or nothing), control characters are not syntax, and a
    language the encoder does not cover gets a low-confidence reply, not an error."""
    before = snapshot(loaded)
    for mode in ["dense", "lexical", "hybrid"]:
        asked = loaded.post("/collections/faq/ask", json={"question": query, "mode": mode})
        searched = loaded.post("/collections/faq/search", json={"query": query, "mode": mode})
        assert asked.status_code == searched.status_code == 200, (asked.text, searched.text)
        body = asked.json()
        assert body["mode"] == mode and body["reason"] in {"answered", "low_score", "no_match"}
        if "stored" not in query:
            assert not body["answered"], body
        for hit in searched.json()["results"]:
            assert (hit["dense_rank"] is not None) or (hit["lexical_rank"] is not None)
    assert snapshot(loaded) == before


def test_the_last_page_offset_there_can_be_is_an_empty_page(loaded: TestClient) -> None:
    response = loaded.get("/collections/faq/items", params={"offset": 2**63 - 1})
    assert response.status_code == 200 and response.json() == []


def test_symlink_out_of_a_data_root_is_refused(loaded: TestClient, tmp_path: Path) -> None:
    data_root = loaded.app.state.context.settings.data_roots[0]  # type: ignore[attr-defined]
    outside = tmp_path / "secret.csv"
    outside.write_text("question,answer\nsecret?,yes\n")
    (data_root / "link.csv").symlink_to(outside)
    (data_root / "sub").mkdir()
    (data_root / "sub" / "up").symlink_to(tmp_path)
    before = snapshot(loaded)
    for path in ["link.csv", "sub/up/secret.csv", str(data_root / "link.csv")]:
        response = loaded.post("/collections/faq/loads/path", json={"path": path})
        assert response.status_code == 403, (path, response.text)
        assert error_of(response)["code"] == "forbidden"
    assert snapshot(loaded) == before


def test_body_over_the_limit_without_content_length(loaded: TestClient) -> None:
    before = snapshot(loaded)

    def chunks() -> Iterator[bytes]:
        yield b'{"question": "'
        for _ in range(300):
            yield b"x" * 10_000
        yield b'"}'

    response = loaded.post(
        "/collections/faq/ask", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert error_of(response)["code"] == "payload_too_large"
    assert snapshot(loaded) == before


def test_a_good_load_after_bad_ones_still_works(loaded: TestClient) -> None:
    """Last in this module: the only test here that changes the stores."""
    for call, _, _ in CASES.values():
        call(loaded)
    response = upload(loaded, "ok.csv", b"question,answer\nIs the server still up?,Yes.\n")
    assert response.status_code == 202
    assert wait_for_job(loaded, response.json()["id"])["added"] == 1
    assert loaded.get("/collections/faq").json()["count"] == 2
