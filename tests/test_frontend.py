"""The web front-end in a real browser: headless Chromium driven by Playwright.

One launcher process (every app, Milvus Lite + SQLite, the real encoders) serves the site on
a free port. For each page the test loads data through the UI and waits for the progress bar,
searches and checks what is shown (text, scores, pictures really decoded), and triggers an
API error to check its message. A screenshot of each page is kept in test-artifacts/.

The front-end only talks HTTP to the API, whose behaviour on both backend pairs the other
tests cover; these run on the embedded pair.
"""

import csv
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from common.app import create_app
from common.launcher import create_site, installed
from common.settings import Settings
from solutions.molecular_search.app import SOLUTION as MOLECULES
from solutions.molecular_search.settings import MoleculeSettings
from solutions.qa_chatbot.app import SAMPLE as QA_SAMPLE
from tests.backends import reserve_ports
from tests.helpers import use_embedded_storage, with_encoders
from tests.imagery import encoded, photos

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
LOAD_TIMEOUT_MS = 180_000


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free local port; yield its base URL."""
    port = reserve_ports(1)[0]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
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


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, minilm, efficientnet) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """Every app in one process, as ``scripts/demo`` runs them, with empty stores."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        # Empty stores: the tests load the samples through the UI.
        use_embedded_storage(monkeypatch, tmp_path_factory.mktemp("site"), load_sample=False)
        solutions = with_encoders(installed(), {"qa": minilm, "images": efficientnet})
        with serving(create_site(solutions, Settings())) as url:
            yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/test installs Debian's chromium package")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh tab; a JavaScript error anywhere fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not errors, errors


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    assert path.stat().st_size > 10_000, path


def load_sample(page: Page) -> None:
    """Click the sample button and wait until the progress bar is full and the job done."""
    page.get_by_role("button", name="Load the sample data").click()
    job = page.locator(".job").first
    expect(job).to_have_attribute("data-status", "succeeded", timeout=LOAD_TIMEOUT_MS)
    bar = job.locator("progress")
    assert bar.evaluate("bar => bar.max > 0 && bar.value === bar.max")
    expect(job.locator(".job-status")).to_contain_text("failed 0")


def shown_count(page: Page) -> int:
    size = page.locator(".size")
    expect(size).to_have_attribute("data-count", re.compile(r"^[1-9]\d*$"))
    return int(size.get_attribute("data-count") or 0)


def all_pictures_decoded(page: Page, selector: str) -> int:
    """How many result pictures there are; fails if any did not decode."""
    pictures = page.locator(selector)
    expect(pictures.first).to_be_visible()
    page.wait_for_function(
        "sel => [...document.querySelectorAll(sel)].every(i => i.complete)", arg=selector
    )
    sizes = pictures.evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
    assert sizes and all(width > 0 for width in sizes), sizes
    return len(sizes)


def upload_into_new_collection(
    page: Page, url: str, picker: str, upload: Path, *, drop: bool = False
) -> Locator:
    """Choose the collection "mine", load ``upload`` through the picker labelled ``picker``
    (choosing the file, or dragging it onto the drop zone), and wait for the job."""
    page.goto(url)
    page.get_by_label("Collection").fill("mine")
    page.get_by_label("Collection").press("Tab")
    if drop:
        files = page.evaluate_handle(
            """([name, text]) => {
                const data = new DataTransfer();
                data.items.add(new File([text], name));
                return data;
            }""",
            [upload.name, upload.read_text()],
        )
        zone = page.locator("label.drop", has_text=picker)
        zone.dispatch_event("dragover", {"dataTransfer": files})
        zone.dispatch_event("drop", {"dataTransfer": files})
    else:
        page.get_by_label(picker).set_input_files(upload)
    job = page.locator(".job").first
    expect(job).to_have_attribute("data-status", "succeeded", timeout=LOAD_TIMEOUT_MS)
    return job


def assert_controls_labelled(page: Page) -> None:
    """Every input and button has a name a screen reader can announce."""
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll("input, button, select, textarea")]
            .filter(c => !(c.labels && c.labels.length) && !c.getAttribute("aria-label")
                         && !c.textContent.trim())
            .map(c => c.outerHTML)"""
    )
    assert not unnamed, unnamed


def first_sample_pair() -> tuple[str, str]:
    with QA_SAMPLE.open(newline="") as file:
        row = next(csv.DictReader(file))
    return row["question"], row["answer"]


def test_qa_page(site: str, page: Page) -> None:
    page.goto(site + "#/qa")
    expect(page.get_by_role("heading", level=1)).to_contain_text("QA chatbot")
    expect(page.locator(".size")).to_contain_text("is empty")
    load_sample(page)
    with QA_SAMPLE.open(newline="") as file:
        assert shown_count(page) == len(list(csv.DictReader(file)))
    assert_controls_labelled(page)
    question, answer = first_sample_pair()
    page.get_by_label("Your question").fill(question.lower())
    page.get_by_label("Your question").press("Enter")  # the keyboard is enough
    reply = page.locator(".bubble.bot").last
    expect(reply.locator(".answer")).to_have_text(answer)
    expect(reply.locator(".score-value").first).to_have_text("confidence 1.000")
    similar = reply.locator(".similar li")
    assert similar.count() == 5
    # Clicking a similar question asks it.
    second = similar.nth(1).locator("button").inner_text()
    similar.nth(1).locator("button").click()
    expect(page.locator(".bubble.user").last).to_have_text(second)
    expect(page.locator(".bubble.bot").last.locator(".answer")).to_be_visible()
    # Nothing close enough: the no-confident-answer state.
    page.get_by_label("Your question").fill("zzzz qqqq xxxx")
    page.get_by_role("button", name="Ask").click()
    expect(page.locator(".bubble.bot").last.locator(".no-answer")).to_contain_text("No confident")
    screenshot(page, "qa")
    # An API error: a collection that does not exist, reported with the API's message.
    page.get_by_label("Collection").fill("no_such")
    page.get_by_label("Collection").press("Enter")
    page.get_by_label("Collection").blur()
    page.get_by_label("Your question").fill("anything")
    page.get_by_role("button", name="Ask").click()
    alert = page.locator(".bubble.bot").last.get_by_role("alert")
    expect(alert).to_contain_text("no collection 'no_such'")
    expect(alert).to_contain_text("HTTP 404")


def test_qa_upload_lists_item_errors(site: str, page: Page, tmp_path: Path) -> None:
    upload = tmp_path / "mine.csv"
    upload.write_text("question,answer\nWhat is a test?,A check.\nNo answer here?,\n")
    job = upload_into_new_collection(page, site + "#/qa", "Load a CSV", upload)
    expect(job.locator(".job-status")).to_contain_text("added 1")
    expect(job.locator(".item-errors")).to_contain_text("1 item could not be loaded")
    expect(job.locator(".item-errors li")).to_have_count(1)
    expect(page.locator(".size")).to_contain_text("1 Q&A pairs in “mine”")
    # A file the app cannot read at all: refused before any job, with the API's reason.
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    page.get_by_label("Load a CSV").set_input_files(bad)
    expect(page.locator(".jobs").get_by_role("alert").first).to_contain_text("cannot load .txt")


def test_a_load_can_be_cancelled(site: str, page: Page, tmp_path: Path) -> None:
    upload = tmp_path / "many.csv"
    rows = "".join(
        f"Question number {i} about topic {i * 7919 % 1000}?,Answer {i}.\n" for i in range(20_000)
    )
    upload.write_text("question,answer\n" + rows)
    page.goto(site + "#/qa")
    page.get_by_label("Collection").fill("many")
    page.get_by_label("Collection").press("Tab")
    page.get_by_label("Load a CSV").set_input_files(upload)
    job = page.locator(".job").first
    expect(job).to_have_attribute("data-status", "running", timeout=LOAD_TIMEOUT_MS)
    job.get_by_role("button", name="Cancel").click()
    expect(job).to_have_attribute("data-status", "cancelled", timeout=LOAD_TIMEOUT_MS)
    expect(job.get_by_role("button", name="Cancel")).to_have_count(0)
    added = int(
        re.search(r"added ([\d,]+)", job.locator(".job-status").inner_text())[1].replace(",", "")
    )
    assert added < 20_000


def test_images_page(site: str, page: Page, tmp_path: Path) -> None:
    page.goto(site + "#/images")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Reverse image search")
    load_sample(page)
    assert shown_count(page) > 0
    assert_controls_labelled(page)
    query = tmp_path / "coffee.png"
    query.write_bytes(encoded(photos()["coffee"]))
    page.get_by_label("Query image").set_input_files(query)
    results = page.locator(".results .result")
    expect(results.first.locator(".result-title")).to_contain_text("coffee")
    assert all_pictures_decoded(page, ".results .result img") > 1
    first_score = float(results.first.locator(".score-value").inner_text().split()[-1])
    assert first_score > 0.9
    # More like this, from a result.
    results.nth(1).get_by_role("button", name="More like this").click()
    expect(page.locator(".results h3")).to_contain_text("More like")
    all_pictures_decoded(page, ".results .result img")
    # The near-duplicates view: the photo itself is its own near-duplicate.
    page.get_by_role("radio", name="Near-duplicates").check()
    page.get_by_label("Query image").set_input_files(query)
    expect(page.locator(".results h3")).to_contain_text("Near-duplicates of coffee.png")
    expect(results.first.locator(".result-title")).to_contain_text("coffee")
    screenshot(page, "images")
    # An API error: a file that is not an image.
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    page.get_by_label("Query image").set_input_files(text)
    alert = page.locator(".results").get_by_role("alert")
    expect(alert).to_contain_text("HTTP 415")


def test_molecules_page(site: str, page: Page, tmp_path: Path) -> None:
    page.goto(site + "#/molecules")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Molecular similarity search")
    load_sample(page)
    assert shown_count(page) > 0
    assert_controls_labelled(page)
    query = page.get_by_label("Query")
    # Checked as you type, with RDKit's reason.
    query.press_sequentially("C1CC(", delay=20)
    hint = page.locator(".hint")
    expect(hint).to_contain_text("Invalid SMILES")
    expect(query).to_have_attribute("aria-invalid", "true")
    query.fill("")
    query.press_sequentially("OC(=O)c1ccccc1OC(C)=O", delay=10)
    expect(hint).to_contain_text("Valid: CC(=O)Oc1ccccc1C(=O)O")
    page.get_by_role("button", name="Search", exact=True).click()
    results = page.locator(".results .result")
    expect(results.first.locator(".result-title")).to_have_text("Aspirin")
    expect(results.first.locator(".score-value")).to_have_text("similarity 1.000")
    assert all_pictures_decoded(page, ".results .result img") == 12
    scores = [float(t.split()[-1]) for t in results.locator(".score-value").all_inner_texts()]
    assert scores == sorted(scores, reverse=True)
    screenshot(page, "molecules")
    # Substructure, one click away: every result contains the pattern.
    page.get_by_role("button", name="Sulfonamide (substructure)").click()
    expect(page.locator(".results h3")).to_contain_text("contain S(=O)(=O)N")
    all_pictures_decoded(page, ".results .result img")
    drawings = results.locator("img").evaluate_all("imgs => imgs.map(i => i.src)")
    assert all("highlight=" in src for src in drawings), drawings  # the match is highlighted
    screenshot(page, "molecules-substructure")
    # An API error: SMARTS that RDKit rejects, with RDKit's reason.
    query.fill("[C")
    page.get_by_role("button", name="Search", exact=True).click()
    alert = page.locator(".results").get_by_role("alert")
    expect(alert).to_contain_text("invalid SMARTS")
    expect(alert).to_contain_text("HTTP 422")


def test_molecule_upload_lists_rdkit_reasons(site: str, page: Page, tmp_path: Path) -> None:
    upload = tmp_path / "mine.smi"
    upload.write_text("CCO ethanol\nC1CC( broken\nc1ccccc1 benzene\n")
    job = upload_into_new_collection(page, site + "#/molecules", "Load a .smi", upload, drop=True)
    expect(job.locator(".job-status")).to_contain_text("added 2")
    expect(job.locator(".item-errors li")).to_contain_text("SMILES Parse Error")


def test_an_app_alone_serves_only_its_page(
    tmp_path: Path, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_embedded_storage(monkeypatch, tmp_path, load_sample=False)
    with serving(create_app(MOLECULES, MoleculeSettings())) as url:
        tab = browser.new_page()
        tab.goto(url)
        expect(tab.get_by_role("heading", level=1)).to_contain_text("Molecular similarity")
        expect(tab.locator("#nav a")).to_have_count(1)
        expect(tab.locator(".size")).to_contain_text("“drugs” is empty")
        docs = tab.locator("footer a")
        expect(docs).to_have_attribute("href", "docs")
        tab.goto(url + "docs")
        expect(tab.locator("#swagger-ui")).to_be_attached()
        tab.close()
