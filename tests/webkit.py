"""Real WebKit for the browser tests that must hold in Safari (a video player that seeks).

Playwright cannot download its own WebKit offline. Debian's WebKitGTK is the same engine
as Safari (it says ``Safari/605.1.15``), though it plays media through GStreamer where Safari
uses AVFoundation. Its MiniBrowser is driven through ``WebKitWebDriver`` with the W3C
WebDriver protocol, spoken here over plain HTTP with httpx, on a virtual X display (Xvfb):
MiniBrowser has no headless mode. ``scripts/browser`` installs the Debian packages.
"""

import base64
import glob
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.backends import reserve_ports
from tests.browser import SCREENSHOTS

DRIVER = "WebKitWebDriver"
MINIBROWSER = "/usr/lib/*/webkit2gtk-4.1/MiniBrowser"
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of an element reference
ENTER = "\ue007"
TAB = "\ue004"


class WebKit:
    """One WebDriver session: open pages, run scripts, find, click and type, screenshots."""

    def __init__(self, client: httpx.Client, session: str) -> None:
        self.client = client
        self.session = f"/session/{session}"

    def command(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.client.request(method, self.session + path, json=body)
        value = response.json().get("value")
        if response.status_code != 200:
            raise AssertionError(f"WebDriver {method} {path}: {response.status_code} {value}")
        return value

    def go(self, url: str) -> None:
        self.command("POST", "/url", {"url": url})

    def run(self, script: str, *args: Any) -> Any:
        """Run a function body in the page (``arguments[0]`` ...); what it returns."""
        return self.command("POST", "/execute/sync", {"script": script, "args": list(args)})

    def wait_for(
        self, condition: str, *args: Any, timeout: float = 30.0, state: str = "return null"
    ) -> Any:
        """Poll a function body until it returns something truthy; that value. On a
        timeout, the error shows what ``state`` (another function body) returns."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.run(condition, *args)
            if value:
                return value
            if time.monotonic() > deadline:
                shown = self.run(state, *args)
                raise AssertionError(f"still false after {timeout:.0f} s: {condition} ({shown})")
            time.sleep(0.1)

    def find(self, xpath: str) -> str:
        """The element an XPath finds, waiting for it to appear."""
        self.wait_for(
            "return document.evaluate(arguments[0], document, null,"
            " XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue !== null",
            xpath,
        )
        found = self.command("POST", "/element", {"using": "xpath", "value": xpath})
        return str(found[ELEMENT])

    def click(self, xpath: str) -> None:
        self.command("POST", f"/element/{self.find(xpath)}/click", {})

    def clear(self, xpath: str) -> None:
        self.command("POST", f"/element/{self.find(xpath)}/clear", {})

    def type(self, xpath: str, text: str) -> None:
        self.command("POST", f"/element/{self.find(xpath)}/value", {"text": text})

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        path.write_bytes(base64.b64decode(self.command("GET", "/screenshot")))
        assert path.stat().st_size > 10_000, path
        return path


@contextmanager
def webkit() -> Iterator[WebKit]:
    """A WebKit window on its own virtual display, closed afterwards."""
    browsers = glob.glob(MINIBROWSER)
    missing = [what for what in (DRIVER, "Xvfb") if shutil.which(what) is None]
    if missing or not browsers:
        pytest.fail(
            f"WebKit is missing ({', '.join(missing) or MINIBROWSER}): scripts/test installs "
            "Debian's webkit2gtk-driver, GStreamer's plugins and xvfb"
        )
    with ExitStack() as stack:
        environment = {**os.environ, "DISPLAY": stack.enter_context(_virtual_display())}
        port = reserve_ports(1)[0]
        driver = subprocess.Popen(
            [DRIVER, f"--port={port}"],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stack.callback(_stop, driver)
        client = stack.enter_context(httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60))
        _wait_until_up(client, driver)
        options = {"binary": browsers[0], "args": ["--automation"]}
        capabilities = {"alwaysMatch": {"webkitgtk:browserOptions": options}}
        created = client.post("/session", json={"capabilities": capabilities})
        assert created.status_code == 200, created.text
        browser = WebKit(client, created.json()["value"]["sessionId"])
        stack.callback(client.delete, browser.session)
        yield browser


@contextmanager
def _virtual_display() -> Iterator[str]:
    """An Xvfb server on a free display number; its name (``:N``)."""
    reading, writing = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(writing), "-screen", "0", "1280x900x24", "-nolisten", "tcp"],
        pass_fds=(writing,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(writing)
    try:
        number = b""
        while not number.endswith(b"\n"):  # all of it: Xvfb dies if the pipe closes early
            chunk = os.read(reading, 16)
            assert chunk, "Xvfb did not start"
            number += chunk
        yield f":{number.decode().strip()}"
    finally:
        os.close(reading)
        _stop(server)


def _wait_until_up(client: httpx.Client, driver: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert driver.poll() is None, "WebKitWebDriver exited"
        try:
            if client.get("/status").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("WebKitWebDriver did not start")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
