"""The QA chatbot end to end over HTTP, on both backend pairs."""

import csv
import json
import random
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from solutions.qa_chatbot.app import SAMPLE
from solutions.qa_chatbot.tests.fixtures import generated_pairs, write_csv
from tests.helpers import HTTP, assert_documented, error_of, snapshot, sse_events, wait_for_job

DATA = Path(__file__).parent / "data"


def sample_pairs() -> dict[str, str]:
    with SAMPLE.open(encoding="utf-8", newline="") as file:
        return {row["question"]: row["answer"] for row in csv.DictReader(file)}


def test_sample_loads_as_a_job_and_paraphrases_find_their_answers(qa: TestClient) -> None:
    load_the_sample_and_ask(qa)
    snapshot(qa)  # both stores hold the same ids, no duplicates in Milvus


def load_the_sample_and_ask(qa: HTTP) -> None:
    """The app end to end over HTTP: the sample loaded as a job followed by its events,
    paraphrases answered, off-topic questions refused, the load again adding nothing. Also
    run against real server processes (tests/test_scale_out.py)."""
    pairs = sample_pairs()
    with SAMPLE.open("rb") as file:
        response = qa.post("/collections/faq/loads", files={"file": ("faq.csv", file, "text/csv")})
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] in {"queued", "running"} and job["source"] == "faq.csv"
    assert response.headers["location"].endswith(f"/jobs/{job['id']}")

    events = sse_events(qa, f"/jobs/{job['id']}/events")
    assert events[-1][0] == "end"
    final = events[-1][1]
    assert final["status"] == "succeeded", final
    assert final["total"] == len(pairs) and final["added"] == len(pairs)
    assert final["failed"] == 0 and final["errors"] == []
    assert {"encode", "store"} <= set(final["timings"])
    progress = [data for event, data in events if event == "progress"]
    assert all(p["done"] <= len(pairs) for p in progress)
    assert qa.get("/collections/faq").json()["count"] == len(pairs)

    paraphrases = [json.loads(line) for line in (DATA / "qa_paraphrases.jsonl").open()]
    for case in paraphrases:
        assert case["ask"].casefold() != case["question"].casefold()
        answer = qa.post("/collections/faq/ask", json={"question": case["ask"], "top_k": 3})
        assert answer.status_code == 200
        body = answer.json()
        assert body["answered"], (case, body)
        assert body["matched_question"] == case["question"], case
        assert body["answer"] == pairs[case["question"]]
        assert body["score"] >= body["threshold"]
        assert len(body["similar"]) == 3
        assert body["similar"][0]["score"] >= body["similar"][1]["score"]

    widest = qa.post("/collections/faq/ask", json={"question": "what is HNSW?", "top_k": 100})
    assert widest.status_code == 200 and len(widest.json()["similar"]) == 100

    for question in (DATA / "qa_off_topic.txt").read_text().splitlines():
        body = qa.post("/collections/faq/ask", json={"question": question}).json()
        assert not body["answered"] and body["answer"] is None, body
        assert "No confident answer" in body["message"]
        assert len(body["similar"]) == 5 and body["score"] < body["threshold"]

    # The same file again: a job that adds nothing.
    with SAMPLE.open("rb") as file:
        again = qa.post("/collections/faq/loads", files={"file": ("faq.csv", file)}).json()
    again = wait_for_job(qa, again["id"])
    assert again["status"] == "succeeded"
    assert again["added"] == 0 and again["duplicates"] == len(pairs)
    assert qa.get("/collections/faq").json()["count"] == len(pairs)


def test_generated_pairs_load_from_a_data_root_and_exact_questions_match(
    qa: TestClient, data_root: Path
) -> None:
    pairs = generated_pairs(120, seed=7)
    write_csv(data_root / "generated.csv", pairs)
    response = qa.post("/collections/made_up/loads/path", json={"path": "generated.csv"})
    assert response.status_code == 202, response.text
    job = wait_for_job(qa, response.json()["id"])
    assert job["status"] == "succeeded" and job["added"] == 120, job
    for question, answer in random.Random(1).sample(pairs, 15):
        asked = "  " + question.upper().replace("?", "") + " "
        body = qa.post("/collections/made_up/ask", json={"question": asked, "top_k": 1}).json()
        assert body["answered"] and body["answer"] == answer and body["score"] > 0.9, body
    assert (data_root / "generated.csv").exists()  # server-side sources are left alone


def test_row_level_problems_are_reported_and_skipped(qa: TestClient, tmp_path: Path) -> None:
    good = generated_pairs(6, seed=3)
    text = "question,answer,extra\n"
    text += "".join(f'"{q}","{a}",x\n' for q, a in good[:3])
    text += '"",an answer without a question,x\n'
    text += '"a question without an answer?",   ,x\n'
    raw = text.encode() + "Caf\u00e9 question in Latin-1?,r\u00e9ponse\n".encode("latin-1")
    raw += "".join(f'"{q}","{a}"\n' for q, a in good[3:]).encode()
    raw += b'"one column only?"\n'
    path = tmp_path / "mixed.csv"
    path.write_bytes(raw)
    with path.open("rb") as file:
        job = qa.post("/collections/mixed/loads", files={"file": ("mixed.csv", file)}).json()
    job = wait_for_job(qa, job["id"])
    assert job["status"] == "succeeded"
    assert job["added"] == 6 and job["failed"] == 4 and job["done"] == 10, job
    reasons = {e["item"]: e["reason"] for e in job["errors"]}
    assert "question" in reasons["line 5"] and "answer" in reasons["line 6"]
    assert "UTF-8" in reasons["line 7"]
    assert "answer" in reasons["line 11"] and "Field required" in reasons["line 11"]
    assert qa.get("/collections/mixed").json()["count"] == 6


def test_jsonl_with_a_broken_line(qa: TestClient, tmp_path: Path) -> None:
    pairs = generated_pairs(4, seed=11)
    lines = [json.dumps({"question": q, "answer": a}) for q, a in pairs]
    lines.insert(2, '{"question": "broken json?", "answer": ')
    lines.insert(3, '["not", "an", "object"]')
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with path.open("rb") as file:
        job = qa.post("/collections/lines/loads", files={"file": ("pairs.jsonl", file)}).json()
    job = wait_for_job(qa, job["id"])
    assert job["added"] == 4 and job["failed"] == 2, job
    assert [e["item"] for e in job["errors"]] == ["line 3", "line 4"]


def test_one_pair_add_get_list_delete_count_drop(qa: TestClient) -> None:
    pair = {"question": "What colour is the demo's logo?", "answer": "Teal."}
    created = qa.post("/collections/notes/items", json=pair)
    assert created.status_code == 201, created.text
    item = created.json()
    assert item["question"] == pair["question"] and item["answer"] == "Teal."
    item_id = item["id"]
    assert isinstance(item_id, str) and int(item_id) > 0

    again = qa.post(
        "/collections/notes/items", json={**pair, "question": " what COLOUR is the demo's   logo? "}
    )
    assert again.status_code == 409 and error_of(again)["code"] == "conflict"

    assert qa.get(f"/collections/notes/items/{item_id}").json()["answer"] == "Teal."
    listed = qa.get("/collections/notes/items").json()
    assert [i["id"] for i in listed] == [item_id]
    assert qa.get("/collections/notes").json()["count"] == 1
    assert (
        qa.post("/collections/notes/ask", json={"question": "logo colour of the demo"}).json()[
            "answer"
        ]
        == "Teal."
    )

    assert qa.delete(f"/collections/notes/items/{item_id}").status_code == 204
    assert qa.get(f"/collections/notes/items/{item_id}").status_code == 404
    assert qa.delete(f"/collections/notes/items/{item_id}").status_code == 404
    assert qa.get("/collections/notes").json()["count"] == 0
    empty = qa.post("/collections/notes/ask", json={"question": "logo?"}).json()
    assert not empty["answered"] and empty["similar"] == []

    assert qa.delete("/collections/notes").status_code == 204
    assert qa.get("/collections/notes").status_code == 404
    assert qa.get("/collections").json() == []
    assert snapshot(qa) == {"milvus_collections": [], "collections": []}


def test_cancelling_a_running_load_keeps_the_stores_consistent(
    qa: TestClient, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "big.csv", generated_pairs(1500, seed=5))
    with path.open("rb") as file:
        job = qa.post("/collections/big/loads", files={"file": ("big.csv", file)}).json()
    cancelled = qa.post(f"/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 202
    job = wait_for_job(qa, job["id"])
    assert job["status"] == "cancelled", job
    assert job["added"] < 1500
    state = snapshot(qa)
    assert len(state["big"]) == job["added"] == qa.get("/collections/big").json()["count"]
    again = qa.post(f"/jobs/{job['id']}/cancel")
    assert again.status_code == 409 and error_of(again)["code"] == "conflict"


def test_jobs_are_listed_and_unknown_jobs_are_404(qa: TestClient) -> None:
    assert qa.get("/jobs").json() == []
    response = qa.post("/collections/faq/loads/sample")
    assert response.status_code == 202
    job = wait_for_job(qa, response.json()["id"])
    assert job["status"] == "succeeded" and job["source"] == "sample"
    assert [j["id"] for j in qa.get("/jobs").json()] == [job["id"]]
    for url in ["/jobs/nope", "/jobs/nope/events"]:
        assert error_of(qa.get(url))["code"] == "not_found"
    assert qa.post("/jobs/nope/cancel").status_code == 404


def test_jobs_are_listed_per_collection(qa: TestClient, tmp_path: Path) -> None:
    started: dict[str, list[str]] = {"faq": [], "notes": []}
    for seed, name in enumerate(["faq", "notes", "faq"]):
        path = write_csv(tmp_path / f"{seed}.csv", generated_pairs(3, seed=seed))
        with path.open("rb") as file:
            job = qa.post(f"/collections/{name}/loads", files={"file": (path.name, file)}).json()
        assert wait_for_job(qa, job["id"])["status"] == "succeeded"
        started[name].append(job["id"])
    for name, ids in started.items():
        listed = qa.get("/jobs", params={"collection": name}).json()
        # Newest first, exactly: times keep their fractions of a second on MySQL too.
        assert [j["id"] for j in listed] == ids[::-1]
        assert all(j["created_at"][19] == "." for j in listed), listed  # 2026-12-02T10:00:00.
        assert {j["collection"] for j in listed} == {name}
    assert len(qa.get("/jobs").json()) == 3
    one = qa.get("/jobs", params={"collection": "faq", "limit": 1}).json()
    assert len(one) == 1 and one[0]["id"] in started["faq"]
    assert qa.get("/jobs", params={"collection": "nothing_here"}).json() == []


def test_health_and_docs(qa: TestClient, backend) -> None:  # type: ignore[no-untyped-def]
    assert qa.get("/health/live").json() == {"status": "ok"}
    ready = qa.get("/health/ready").json()
    assert ready["status"] == "ready"
    assert ready["milvus_mode"] == ("lite" if backend.name == "lite" else "server")
    assert ready["encoder"].startswith("all-MiniLM-L6-v2 or multilingual-e5-small")
    assert "text/html" in qa.get("/docs").headers["content-type"]
    assert "text/html" in qa.get("/redoc").headers["content-type"]
    response = qa.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"


def test_every_endpoint_is_documented(qa: TestClient) -> None:
    assert_documented(qa)


@pytest.mark.parametrize("bad_name", ["x; DROP TABLE y", "../etc", "Faq", "a__b", "x" * 41])
def test_bad_collection_names_are_rejected(qa: TestClient, bad_name: str) -> None:
    before = snapshot(qa)
    response = qa.post("/collections", json={"name": bad_name})
    assert response.status_code == 422 and error_of(response)["code"] == "invalid_input"
    encoded = bad_name.replace("/", "%2F").replace(";", "%3B").replace(" ", "%20")
    response = qa.post(f"/collections/{encoded}/ask", json={"question": "hello?"})
    assert response.status_code in {404, 422}, response.text
    error_of(response)
    response = qa.post(f"/collections/{encoded}/items", json={"question": "q?", "answer": "a"})
    assert response.status_code in {404, 422}
    assert snapshot(qa) == before
