"""Slow clients are cut off after the documented time while everyone else is served.

These need a real server (the TestClient has no sockets): uvicorn with the apps' protocol,
on a free port, in a thread.
"""

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from common.app import create_app
from common.startup import headers_timed
from solutions.qa_chatbot.settings import QASettings
from tests.browser import serving

DEADLINE = 2.0  # seconds, for headers and for bodies


@pytest.fixture
def server(qa_solution, settings: QASettings) -> Iterator[str]:  # type: ignore[no-untyped-def]
    timed = settings.model_copy(update={"header_timeout_s": DEADLINE, "body_timeout_s": DEADLINE})
    with serving(create_app(qa_solution, timed), http=headers_timed(DEADLINE)) as url:
        yield url.removeprefix("http://").rstrip("/")


def trickle(address: str, head: bytes, tail: bytes) -> tuple[float, bytes]:
    """Send ``head`` at once, then ``tail`` one byte every 0.25 s; how long until the server
    closed the connection, and what it answered."""
    host, port = address.split(":")
    with socket.create_connection((host, int(port))) as connection:
        connection.sendall(head)
        start = time.monotonic()
        connection.settimeout(0.25)
        answer = b""
        for byte in tail:
            try:
                connection.sendall(bytes([byte]))
            except OSError:  # closed by the server
                break
            try:
                chunk = connection.recv(65536)
            except TimeoutError:
                continue
            except OSError:  # reset by the server
                break
            if not chunk:
                break
            answer += chunk
        connection.settimeout(5)
        try:
            while chunk := connection.recv(65536):
                answer += chunk
        except OSError:
            pass
        return time.monotonic() - start, answer


def test_headers_sent_a_byte_at_a_time_are_cut_off(server: str) -> None:
    results: list[tuple[float, bytes]] = []
    slow = [
        threading.Thread(
            target=lambda: results.append(
                trickle(server, b"GET /health/live HTTP/1.1\r\n", b"X-Slow: " + b"a" * 200)
            )
        )
        for _ in range(30)
    ]
    for thread in slow:
        thread.start()
    time.sleep(0.5)
    with httpx.Client(base_url=f"http://{server}") as client:  # everyone else is served
        for _ in range(5):
            assert client.get("/health/live", timeout=5).status_code == 200
    for thread in slow:
        thread.join(timeout=60)
    assert len(results) == 30
    for took, answer in results:
        assert DEADLINE - 0.5 < took < DEADLINE + 3, took
        assert answer == b""  # closed: no request was ever made


def test_a_body_sent_a_byte_at_a_time_gets_408_and_is_cut_off(server: str) -> None:
    body = b'{"question": "' + b"q" * 200 + b'"}'
    head = (
        b"POST /collections/faq/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    took, answer = trickle(server, head, body)
    assert DEADLINE - 0.5 < took < DEADLINE + 3, took
    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 408 Request Timeout", answer
    assert b"connection: close" in rest.lower()
    assert b'"code":"request_timeout"' in rest
    with httpx.Client(base_url=f"http://{server}") as client:
        assert client.get("/health/live").status_code == 200


def test_a_kept_alive_connection_gets_the_same_deadline_for_its_next_request(
    server: str,
) -> None:
    first = b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n"
    took, answer = trickle(server, first + b"GET /health/live HTTP/1.1\r\n", b"X-Slow: " * 40)
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.count(b"HTTP/1.1") == 1
    assert took < DEADLINE + 3, took
