"""The interactive API docs, in a real browser, offline: what a user sees at /docs and /redoc.

Every app's Swagger UI and ReDoc must render every operation of its OpenAPI schema, load
nothing from any host but the app's own (the machine running the tests has no internet,
like many that run these demos), and log no error; Swagger UI's "Try it out" must work for
a JSON route and for a file upload. Checked for each app alone and under the launcher's
prefixes. Screenshots land in test-artifacts/screenshots/.
"""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect

from common.app import create_app
from common.launcher import create_site, installed
from common.settings import Settings
from common.solution import Solution
from solutions import APPS
from tests.browser import chromium, serving, watched_tab
from tests.helpers import use_embedded_storage, with_encoders

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
RENDER_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def apps(qa_encoders, efficientnet, frame_encoder) -> list[Solution[Any]]:  # type: ignore[no-untyped-def]
    encoders = {"qa": qa_encoders, "images": efficientnet, "video": frame_encoder}
    return with_encoders(installed(APPS), encoders)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, apps: list[Solution[Any]]) -> Iterator[str]:
    """Every app in one process under its prefix, as ``scripts/demo`` runs them."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_embedded_storage(monkeypatch, tmp_path_factory.mktemp("site"), load_sample=False)
        with serving(create_site(apps, Settings())) as url:
            yield url


def operation_count(schema_url: str) -> int:
    paths = httpx.get(schema_url).raise_for_status().json()["paths"]
    return sum(len(operations) for operations in paths.values())


def check_docs(browser: Browser, base: str, name: str) -> None:
    """``base`` is where one app's API is (``http://host:port/qa/`` or the site root)."""
    operations = operation_count(base + "openapi.json")
    assert operations > 0
    with watched_tab(browser) as tab:
        tab.page.goto(base + "docs")
        expect(tab.page.locator(".opblock")).to_have_count(operations, timeout=RENDER_TIMEOUT_MS)
        expect(tab.page.locator(".info .title")).to_be_visible()
        tab.page.screenshot(path=SCREENSHOTS / f"docs-{name}.png", full_page=False)

        tab.page.goto(base + "redoc")
        rendered = tab.page.locator("div[id*='/operation/']")
        expect(rendered).to_have_count(operations, timeout=RENDER_TIMEOUT_MS)
        expect(rendered.first.locator("h2")).to_be_visible()
        tab.page.screenshot(path=SCREENSHOTS / f"redoc-{name}.png", full_page=False)

        assert not tab.foreign_requests(base), tab.foreign_requests(base)
        assert not tab.page_errors + tab.console_errors, tab.page_errors + tab.console_errors
        # The pages' own assets really came from the app (not a cache of a CDN copy).
        assert any("/docs-assets/swagger-ui/swagger-ui-bundle.js" in u for u in tab.requests)
        assert any("/docs-assets/redoc/redoc.standalone.js" in u for u in tab.requests)


@pytest.mark.parametrize("namespace", ["qa", "images", "molecules"])
def test_docs_under_the_launcher(site: str, browser: Browser, namespace: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    check_docs(browser, f"{site}{namespace}/", f"launcher-{namespace}")


@pytest.mark.parametrize("namespace", ["qa", "images", "molecules"])
def test_docs_of_an_app_alone(
    apps: list[Solution[Any]],
    browser: Browser,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    use_embedded_storage(monkeypatch, tmp_path, load_sample=False)
    solution = next(s for s in apps if s.namespace == namespace)
    with serving(create_app(solution, solution.settings_model())) as url:
        check_docs(browser, url, namespace)


def test_try_it_out_a_json_route(site: str, browser: Browser) -> None:
    """The example body Swagger UI fills in is valid and the call answers 200."""
    with watched_tab(browser) as tab:
        tab.page.goto(site + "molecules/docs")
        operation = tab.page.locator("#operations-molecules-validate_molecules_validate_post")
        operation.locator(".opblock-summary").click()
        operation.get_by_role("button", name="Try it out").click()
        body = operation.locator("textarea.body-param__text")
        assert "smiles" in body.input_value()
        operation.get_by_role("button", name="Execute").click()
        live = operation.locator(".live-responses-table tr.response .response-col_status")
        expect(live).to_have_text("200", timeout=RENDER_TIMEOUT_MS)
        expect(operation.locator(".live-responses-table")).to_contain_text("canonical_smiles")
        assert not tab.foreign_requests(site), tab.foreign_requests(site)
        assert not tab.page_errors + tab.console_errors, tab.page_errors + tab.console_errors


def test_try_it_out_an_upload(site: str, browser: Browser, tmp_path: Path) -> None:
    """A CSV chosen in Swagger UI's file field is loaded as a job: 202, then it succeeds."""
    upload = tmp_path / "office.csv"
    upload.write_text("question,answer\nWhere do I park my bike?,In the courtyard.\n")
    with watched_tab(browser) as tab:
        tab.page.goto(site + "qa/docs")
        operation = tab.page.locator("#operations-loads-load_upload_collections__name__loads_post")
        operation.locator(".opblock-summary").click()
        operation.get_by_role("button", name="Try it out").click()
        operation.locator("tr[data-param-name='name'] input").fill("from_docs")
        # `file` takes one or more files: Swagger UI shows a chooser, and adds more on request.
        operation.locator("input[type=file]").set_input_files(upload)
        operation.get_by_role("button", name="Execute").click()
        live = operation.locator(".live-responses-table tr.response .response-col_status")
        expect(live).to_have_text("202", timeout=RENDER_TIMEOUT_MS)
        expect(operation.locator(".live-responses-table")).to_contain_text('"source": "office.csv"')
        assert not tab.page_errors + tab.console_errors, tab.page_errors + tab.console_errors
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        jobs = httpx.get(site + "qa/jobs").json()
        job = next(j for j in jobs if j["collection"] == "from_docs")
        if job["status"] != "queued" and job["status"] != "running":
            break
        time.sleep(0.1)
    assert (job["status"], job["added"]) == ("succeeded", 1), job
    assert httpx.get(site + "qa/collections/from_docs").json()["count"] == 1
