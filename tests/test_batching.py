"""Micro-batching of encoder calls (``common/batching.py``): concurrent calls are one batch,
each caller gets its own rows, a bad input fails only its own call, a full queue is a 503.

The first tests use a small counting encoder, so that they see every batch it was given;
the last ones send concurrent queries to the QA and image apps (real encoders, both
backend pairs) and compare the answers with the same queries sent one at a time."""

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from common.batching import BatchingEncoder
from common.errors import Overloaded
from common.http import install_error_handlers
from solutions.qa_chatbot.tests.fixtures import generated_pairs, store
from tests.browser import serving
from tests.helpers import wait_for_job
from tests.imagery import altered, encoded, photos, zip_of


class Doubling:
    """Vectors [x, 2x] of numbers; refuses negative ones; can be held before it answers."""

    name, dim, metric = "doubling", 2, "L2"

    def __init__(self) -> None:
        self.batches: list[list[float]] = []
        self.threads: list[str] = []
        self.entered = threading.Event()  # set once it has been called
        self.hold = threading.Event()
        self.hold.set()

    def encode(self, inputs: Sequence[Any], /) -> np.ndarray:
        self.entered.set()
        self.hold.wait(30)
        self.batches.append(list(inputs))
        self.threads.append(threading.current_thread().name)
        if any(x < 0 for x in inputs):
            raise ValueError(f"negative: {[x for x in inputs if x < 0]}")
        return np.asarray([[x, 2 * x] for x in inputs], dtype=np.float32)


def together(encoder: BatchingEncoder, calls: list[list[float]]) -> list[Any]:
    """Every call at once from its own thread; each one's rows, or the error it raised."""
    start = threading.Barrier(len(calls))

    def one(inputs: list[float]) -> Any:
        start.wait()
        try:
            return encoder.encode(inputs)
        except Exception as error:
            return error

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(one, calls))


def test_concurrent_calls_are_encoded_together_and_answered_apart() -> None:
    inner = Doubling()
    encoder = BatchingEncoder(inner, max_batch=64, max_wait=0.05)
    calls = [[float(i)] for i in range(16)] + [[100.0, 101.0]]
    try:
        answers = together(encoder, calls)
    finally:
        encoder.close()
    for inputs, rows in zip(calls, answers, strict=True):
        assert np.array_equal(rows, [[x, 2 * x] for x in inputs]), (inputs, rows)
    assert sum(len(batch) for batch in inner.batches) == 18
    assert len(inner.batches) < len(calls)  # gathered, not one call each
    assert max(len(batch) for batch in inner.batches) > 2


def test_a_batch_is_never_larger_than_its_bound() -> None:
    inner = Doubling()
    encoder = BatchingEncoder(inner, max_batch=4, max_wait=0.05)
    try:
        answers = together(encoder, [[float(i)] for i in range(20)])
    finally:
        encoder.close()
    assert [float(rows[0][0]) for rows in answers] == [float(i) for i in range(20)]
    assert max(len(batch) for batch in inner.batches) <= 4


def test_a_bad_input_fails_its_own_call_only() -> None:
    inner = Doubling()
    encoder = BatchingEncoder(inner, max_batch=64, max_wait=0.05)
    calls = [[1.0], [2.0], [-3.0], [4.0, 5.0], [6.0]]
    try:
        answers = together(encoder, calls)
    finally:
        encoder.close()
    assert isinstance(answers[2], ValueError) and "-3.0" in str(answers[2])
    for inputs, rows in zip(calls, answers, strict=True):
        if inputs != [-3.0]:
            assert np.array_equal(rows, [[x, 2 * x] for x in inputs]), (inputs, rows)


def test_an_encoder_that_answers_wrongly_fails_the_calls_and_the_worker_goes_on() -> None:
    inner = Doubling()
    encoder = BatchingEncoder(inner, max_batch=64, max_wait=0.05)
    real = inner.encode
    inner.encode = lambda inputs: real(inputs)[:-1]  # type: ignore[method-assign]
    try:
        with pytest.raises(RuntimeError, match="answered 1 results for 2 inputs"):
            encoder.encode([1.0, 2.0])
        inner.encode = real  # type: ignore[method-assign]
        assert np.array_equal(encoder.encode([3.0]), [[3.0, 6.0]])
    finally:
        encoder.close()


def test_a_full_queue_refuses_at_once_and_the_rest_are_answered() -> None:
    inner = Doubling()
    inner.hold.clear()  # the encoder is busy
    encoder = BatchingEncoder(inner, max_batch=2, max_wait=0, max_waiting=2)
    try:
        with ThreadPoolExecutor(3) as pool:
            running = pool.submit(encoder.encode, [1.0])
            assert inner.entered.wait(10)
            waiting = [pool.submit(encoder.encode, [x]) for x in (2.0, 3.0)]
            for _ in range(1000):  # until both are queued behind the busy one
                if encoder.waiting == 2:
                    break
                threading.Event().wait(0.01)
            with pytest.raises(Overloaded) as refused:
                encoder.encode([4.0])
            assert refused.value.status_code == 503 and refused.value.retry_after == 1
            inner.hold.set()
            results = [running.result(30), *(w.result(30) for w in waiting)]
    finally:
        inner.hold.set()
        encoder.close()
    assert [float(rows[0][0]) for rows in results] == [1.0, 2.0, 3.0]


def test_a_load_sized_call_runs_at_once_on_its_own_thread() -> None:
    inner = Doubling()
    encoder = BatchingEncoder(inner, max_batch=8)
    try:
        rows = encoder.encode([float(i) for i in range(8)])
        small = encoder.encode([1.0])
    finally:
        encoder.close()
    assert rows.shape == (8, 2) and np.array_equal(small, [[1.0, 2.0]])
    assert inner.threads == [threading.current_thread().name, "batch doubling encoder"]
    with pytest.raises(RuntimeError, match="closed"):
        encoder.encode([1.0])


def test_the_wrapper_is_the_encoder_it_wraps() -> None:
    inner = Doubling()
    encoder = BatchingEncoder(inner)
    try:
        assert (encoder.name, encoder.dim, encoder.metric) == ("doubling", 2, "L2")
        assert encoder.hold is inner.hold  # what else the app's encoder offers
    finally:
        encoder.close()


def test_overloaded_is_a_503_with_retry_after_and_the_error_shape() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/busy")
    def busy() -> None:
        raise Overloaded("the server is busy: try again in a moment")

    response = TestClient(app).get("/busy")
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    error = response.json()["error"]
    assert error["code"] == "overloaded" and "busy" in error["message"]
    assert set(error) == {"code", "message", "details", "request_id"}


def test_clients_that_hang_up_while_waiting_do_not_break_the_batch() -> None:
    """Over real HTTP (uvicorn): of eight requests waiting for one held batch, four clients
    hang up; once the encoder answers, the other four get their own rows, and the worker
    goes on serving new requests."""
    inner = Doubling()
    encoder = BatchingEncoder(inner, max_batch=32, max_wait=0.05)
    app = FastAPI()

    @app.get("/double/{x}")
    def double(x: float) -> list[float]:
        return [float(v) for v in np.asarray(encoder.encode([x]))[0]]

    async def requests(base: str) -> tuple[list[Any], list[Any]]:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            await client.get("/double/0")  # the worker's first batch: nothing is held yet
            inner.hold.clear()
            inner.entered.clear()
            kept = [asyncio.create_task(client.get(f"/double/{x}")) for x in range(1, 5)]
            dropped = [asyncio.create_task(client.get(f"/double/{x}")) for x in range(5, 9)]
            assert await asyncio.to_thread(inner.entered.wait, 30)
            await asyncio.sleep(0.2)  # every request is in, waiting for the held batch
            for task in dropped:
                task.cancel()  # the client closes its connection
            await asyncio.gather(*dropped, return_exceptions=True)
            inner.hold.set()
            answers = await asyncio.gather(*kept)
            after = await asyncio.gather(*(client.get(f"/double/{x}") for x in (10, 11)))
        return answers, after

    try:
        with serving(app) as base:
            answers, after = asyncio.run(requests(base))
    finally:
        encoder.close()
    assert [r.status_code for r in answers + after] == [200] * 6
    assert [r.json() for r in answers] == [[x, 2 * x] for x in (1.0, 2.0, 3.0, 4.0)]
    assert [r.json() for r in after] == [[10.0, 20.0], [11.0, 22.0]]
    assert sorted(x for batch in inner.batches[1:] for x in batch if 1 <= x <= 8) == list(
        map(float, range(1, 9))
    )  # the hung-up requests were still encoded, in the same batches, and dropped quietly


def at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Every call at once from its own thread; what each returned."""
    start = threading.Barrier(len(calls))

    def one(call: Callable[[], Any]) -> Any:
        start.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(one, calls))


def worker_batches(client: TestClient) -> int:
    return sum(b.batches for b in client.app.state.context.batching.made)  # type: ignore[attr-defined]


Hits = list[tuple[str, float]]  # ids and scores, best first


def same_hits(alone: list[Hits], together: list[Hits]) -> None:
    for one, other in zip(alone, together, strict=True):
        assert [i for i, _ in one] == [i for i, _ in other], (one, other)
        assert np.allclose([s for _, s in one], [s for _, s in other], atol=1e-6), (one, other)


def answered_alike(client: TestClient, query: Callable[[Any], Hits], inputs: list[Any]) -> None:
    """The queries sent one at a time, then all at once: the same hits, through the worker."""
    alone = [query(x) for x in inputs]
    before = worker_batches(client)
    together = at_once([lambda x=x: query(x) for x in inputs])
    same_hits(alone, together)
    assert worker_batches(client) > before  # they went through the batching


def test_concurrent_asks_are_answered_as_if_asked_alone(shared_qa: TestClient) -> None:
    pairs = dict(generated_pairs(24, seed=11))
    store(shared_qa, "batched", pairs)
    # Each stored question with its last word left out: near, not equal, to one of them.
    questions = [" ".join(q.split()[:-1]) + "?" for q in list(pairs)[:16]]

    def ask(question: str) -> Hits:
        response = shared_qa.post(
            "/collections/batched/ask", json={"question": question, "top_k": 5}
        )
        assert response.status_code == 200, response.text
        return [(hit["id"], hit["score"]) for hit in response.json()["similar"]]

    answered_alike(shared_qa, ask, questions)


def test_concurrent_image_searches_find_what_they_find_alone(
    shared_images: TestClient, tmp_path: Path
) -> None:
    pictures = photos()
    members = {f"{name}.png": encoded(picture) for name, picture in pictures.items()}
    archive = zip_of(tmp_path / "photos.zip", members)
    with archive.open("rb") as file:
        response = shared_images.post(
            "/collections/batched/loads", files=[("file", ("photos.zip", file, "application/zip"))]
        )
    assert response.status_code == 202, response.text
    assert wait_for_job(shared_images, response.json()["id"])["status"] == "succeeded"
    queries = [encoded(altered(p, "crop70", seed)) for seed, p in enumerate(pictures.values())]

    def search(query: bytes) -> Hits:
        response = shared_images.post(
            "/collections/batched/search",
            data={"top_k": "5"},
            files={"file": ("query.png", query, "image/png")},
        )
        assert response.status_code == 200, response.text
        return [(hit["id"], hit["score"]) for hit in response.json()["results"]]

    answered_alike(shared_images, search, queries)
