"""What the browser tests share: a server on a free port, headless Chromium, a watched tab.

Chromium is Debian's (``scripts/browser`` installs it): Playwright cannot download its own
browsers offline. A watched tab records every request and console error, so that a test can
assert that a page rendered without reaching any host but its own.
"""

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, sync_playwright
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.backends import reserve_ports

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass(frozen=True)
class Served:
    path: str
    range: str | None  # the request's Range header
    status: int


class Recorded:
    """An ASGI app that notes every HTTP request it answers (for what a browser asked for),
    and can send videos slowly (so that a player seeks before it has read the whole file)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.served: list[Served] = []
        self.video_pause = 0.0  # seconds before each part of a video's body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        asked = headers.get(b"range")

        async def noting(message: Message) -> None:
            if message["type"] == "http.response.start":
                range_ = asked.decode("latin-1") if asked is not None else None
                self.served.append(Served(scope["path"], range_, message["status"]))
            elif self.video_pause and scope["path"].endswith(("/original", "/playable")):
                await asyncio.sleep(self.video_pause)
            await send(message)

        await self.app(scope, receive, noting)


@contextmanager
def serving(app: FastAPI | Recorded, **config: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free local port; yield its base URL (ending in ``/``).

    ``config``: more of uvicorn's settings (e.g. ``http=`` a protocol class)."""
    port = reserve_ports(1)[0]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, **config)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 300
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(timeout=60)


@contextmanager
def chromium() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/test installs Debian's chromium package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Watched:
    """A tab, with every URL it requested, its uncaught JavaScript errors and the errors its
    console logged (which include the browser's notes on every 4xx answer)."""

    page: Page
    requests: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def foreign_requests(self, origin: str) -> list[str]:
        """Requests to any host but ``origin`` (data: and same-origin blob: URLs are local)."""
        own = urlsplit(origin)
        return [
            url
            for url in self.requests
            if not url.startswith("data:")
            and urlsplit(url.removeprefix("blob:"))[:2] != (own.scheme, own.netloc)
        ]


@contextmanager
def watched_tab(browser: Browser, viewport: tuple[int, int] = (1280, 900)) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    tab = Watched(context.new_page())
    tab.page.on("request", lambda request: tab.requests.append(request.url))
    tab.page.on(
        "console",
        lambda message: tab.console_errors.append(message.text) if message.type == "error" else 0,
    )
    tab.page.on("pageerror", lambda error: tab.page_errors.append(f"{error}\n{error.stack}"))
    try:
        yield tab
    finally:
        context.close()


def screenshot(page: Page, name: str) -> None:
    """A full-page screenshot in test-artifacts/screenshots/, to look at after a run."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    assert path.stat().st_size > 10_000, path
