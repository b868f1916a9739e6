"""The web front-end in a real browser: headless Chromium driven by Playwright.

One launcher process (every app, Milvus Lite + SQLite, the real encoders) serves the site on
a free port. For each page the tests load data through the UI and wait for the progress bar,
search and check what is shown (text, scores, pictures really decoded), manage the data
(create with options, browse, open, delete an item, drop a collection, read the job history)
and check the stores over HTTP afterwards, and trigger API errors to check their messages.
Every tab fails its test if it requests anything from another origin. Screenshots of the
pages are kept in test-artifacts/. The video player is also checked in WebKit, Safari's
engine (``tests/webkit.py``).

The front-end only talks HTTP to the API, whose behaviour on both backend pairs the other
tests cover; these run on the embedded pair.
"""

import csv
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from common.app import create_app
from common.launcher import create_site, installed
from common.settings import Settings
from solutions import APPS
from solutions.molecular_search.app import SOLUTION as MOLECULES
from solutions.molecular_search.settings import MoleculeSettings
from solutions.qa_chatbot.app import SAMPLE as QA_SAMPLE
from solutions.video_analysis.tests.fixtures import EXCERPT, SampleVideos, truth
from solutions.video_analysis.tests.fixtures import pictures as clip_pictures
from tests.browser import Recorded, chromium, screenshot, serving, watched_tab
from tests.helpers import use_embedded_storage, with_encoders
from tests.imagery import encoded, photos
from tests.videos import web_copy
from tests.webkit import ENTER, TAB, WebKit, webkit

ROOT = Path(__file__).resolve().parents[1]
LOAD_TIMEOUT_MS = 180_000
CLIP = truth()
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
NAME_RULE = (
    "Use lower-case letters, digits and single underscores, starting with a letter "
    "(at most 40 characters)."
)


SERVED: dict[str, Recorded] = {}  # what the site answered, by its URL


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, qa_encoders, efficientnet, frame_encoder
) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """Every app in one process, as ``scripts/demo`` runs them, with empty stores."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        # Empty stores: the tests load the samples through the UI.
        use_embedded_storage(monkeypatch, tmp_path_factory.mktemp("site"), load_sample=False)
        encoders = {"qa": qa_encoders, "images": efficientnet, "video": frame_encoder}
        solutions = with_encoders(installed(APPS), encoders)
        recorded = Recorded(create_site(solutions, Settings()))
        with serving(recorded) as url:
            SERVED[url] = recorded
            yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@contextmanager
def tab(browser: Browser, site: str, viewport: dict[str, int]) -> Iterator[Page]:
    """A fresh tab; a JavaScript error anywhere fails the test, and so does a request that
    leaves the site's origin (the front-end must work offline)."""
    with watched_tab(browser, (viewport["width"], viewport["height"])) as watched:
        yield watched.page
    assert not watched.page_errors, watched.page_errors
    assert watched.requests, "the tab requested nothing"
    assert not watched.foreign_requests(site), watched.foreign_requests(site)


@pytest.fixture
def page(browser: Browser, site: str) -> Iterator[Page]:
    with tab(browser, site, DESKTOP) as opened:
        yield opened


@pytest.fixture
def phone(browser: Browser, site: str) -> Iterator[Page]:
    with tab(browser, site, PHONE) as opened:
        yield opened


def api(site: str, path: str) -> httpx.Response:
    """The stores as the API reports them, read beside the browser."""
    return httpx.get(site + path, timeout=30)


def choose_collection(page: Page, name: str) -> None:
    page.get_by_label("Collection", exact=True).fill(name)
    page.get_by_label("Collection", exact=True).press("Tab")


def live_job(page: Page) -> Locator:
    """The newest load followed live in the data panel, once it has ended well."""
    job = page.locator(".jobs .job").first
    expect(job).to_have_attribute("data-status", "succeeded", timeout=LOAD_TIMEOUT_MS)
    return job


def load_sample(page: Page, collection: str) -> None:
    """Click the sample button, which says where it loads, and wait for a full progress bar."""
    page.get_by_role("button", name=f"Load the sample into “{collection}”").click()
    job = live_job(page)
    bar = job.locator("progress")
    assert bar.evaluate("bar => bar.max > 0 && bar.value === bar.max")
    expect(job.locator(".job-status")).to_contain_text("failed 0")


def shown_count(page: Page) -> int:
    size = page.locator(".size")
    expect(size).to_have_attribute("data-count", re.compile(r"^[1-9]\d*$"))
    return int(size.get_attribute("data-count") or 0)


def all_pictures_decoded(page: Page, selector: str) -> int:
    """How many pictures match ``selector``; fails if any did not decode."""
    pictures = page.locator(selector)
    expect(pictures.first).to_be_visible()
    page.wait_for_function(
        "sel => [...document.querySelectorAll(sel)].every(i => i.complete)", arg=selector
    )
    sizes = pictures.evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
    assert sizes and all(width > 0 for width in sizes), sizes
    return len(sizes)


def no_broken_pictures(page: Page) -> None:
    broken = page.evaluate(
        "() => [...document.images].filter(i => i.complete && !i.naturalWidth).map(i => i.src)"
    )
    assert not broken, broken


def assert_controls_labelled(page: Page) -> None:
    """Every input and button has a name a screen reader can announce."""
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll("input, button, select, textarea")]
            .filter(c => !(c.labels && c.labels.length) && !c.getAttribute("aria-label")
                         && !c.textContent.trim())
            .map(c => c.outerHTML)"""
    )
    assert not unnamed, unnamed


def assert_meters_run_from_0_to_1(page: Page) -> None:
    """Every score meter is filled as much as its score out of 1; negatives show empty."""
    meters = page.locator(".score").evaluate_all(
        """spans => spans.map(s => {
            const m = s.querySelector("meter");
            return [m.min, m.max, m.value, Number(s.textContent.trim().split(" ").pop())];
        })"""
    )
    assert meters
    for low, high, filled, score in meters:
        assert (low, high) == (0, 1)
        assert filled == pytest.approx(min(1.0, max(0.0, score)), abs=1e-3), (filled, score)


def sample_pairs() -> list[dict[str, str]]:
    with QA_SAMPLE.open(newline="") as file:
        return list(csv.DictReader(file))


def card(page: Page, title: str) -> Locator:
    return page.locator(".items-browser .result", has_text=title)


def open_items(page: Page) -> Locator:
    browser = page.locator("details.items-browser")
    browser.locator("summary").click()
    expect(browser).to_have_attribute("open", "")
    return browser


def open_item(page: Page, title: str) -> Locator:
    page.get_by_role("button", name=f"Open {title}").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading")).to_have_text(title)
    return dialog


def field_of(dialog: Locator, name: str) -> str:
    return dialog.locator(f".fields > div:has(dt:text-is('{name}')) dd").inner_text()


def delete_item(page: Page, dialog: Locator, title: str, collection: str) -> None:
    dialog.get_by_role("button", name="Delete this item").click()
    expect(dialog.get_by_role("group")).to_contain_text(f"Delete “{title}” from “{collection}”?")
    dialog.get_by_role("button", name="Yes, delete").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.locator(".items-browser .notice")).to_have_text(f"Deleted “{title}”.")


def collection_names(site: str, app: str) -> list[str]:
    return [c["name"] for c in api(site, f"{app}/collections").json()]


def drop_collection(page: Page, site: str, app: str, collection: str, noun: str) -> None:
    """Drop with its confirmation step: "No" first keeps it, then "Yes" drops it."""
    page.get_by_role("button", name=f"Drop “{collection}”").click()
    step = page.locator(".manage").get_by_role("group")
    expect(step).to_contain_text(f"Drop “{collection}” and its")
    expect(step.get_by_role("button", name="No")).to_be_focused()  # the safe answer
    expect(step).to_contain_text(f"{noun}? This cannot be undone.")
    step.get_by_role("button", name="No").click()
    expect(step).to_have_count(0)
    assert collection in collection_names(site, app)
    page.get_by_role("button", name=f"Drop “{collection}”").click()
    page.get_by_role("button", name="Yes, drop it").click()
    expect(page.locator(".size")).to_contain_text(f"There is no collection “{collection}” yet")
    expect(page.locator(".items-browser")).to_have_count(0)
    expect(page.locator(".job-history")).to_have_count(0)
    expect(page.locator(".jobs .job")).to_have_count(0)


def assert_dropped(site: str, app: str, collection: str, item_urls: list[str]) -> None:
    assert collection not in collection_names(site, app)
    assert api(site, f"{app}/collections/{collection}").status_code == 404
    for url in item_urls:
        assert api(site, url).status_code == 404, url


def test_qa_page(site: str, page: Page) -> None:
    page.goto(site + "#/qa")
    expect(page.get_by_role("heading", level=1)).to_contain_text("QA chatbot")
    expect(page.locator(".size")).to_contain_text("There is no collection “faq” yet")
    load_sample(page, "faq")
    pairs = sample_pairs()
    assert shown_count(page) == len(pairs)
    assert_controls_labelled(page)
    question = page.get_by_label("Your question")
    # The question the input suggests is one the sample answers.
    suggested = (question.get_attribute("placeholder") or "").removeprefix("e.g. ")
    question.fill(suggested)
    question.press("Enter")  # the keyboard is enough
    reply = page.locator(".bubble.bot").last
    expect(reply.locator(".answer")).to_be_visible()
    assert reply.locator(".answer").inner_text() in {p["answer"] for p in pairs}
    # An exact question: its own answer, confidence 1.
    first = pairs[0]
    question.fill(first["question"].lower())
    question.press("Enter")
    reply = page.locator(".bubble.bot").last
    expect(reply.locator(".answer")).to_have_text(first["answer"])
    expect(reply.locator(".score-value").first).to_have_text("confidence 1.000")
    similar = reply.locator(".similar li")
    assert similar.count() == 5
    # Each candidate says where it came from: asked word for word, first by meaning.
    expect(similar.first.locator(".origin")).to_contain_text("meaning #1")
    # Clicking a similar question asks it.
    second = similar.nth(1).locator("button").inner_text()
    similar.nth(1).locator("button").click()
    expect(page.locator(".bubble.user").last).to_have_text(second)
    expect(page.locator(".bubble.bot").last.locator(".answer")).to_be_visible()
    # Nothing close enough: the no-confident-answer state; the meters run from 0 to 1.
    question.fill("zzzz qqqq xxxx")
    page.get_by_role("button", name="Ask").click()
    expect(page.locator(".bubble.bot").last.locator(".no-answer")).to_contain_text("No confident")
    assert_meters_run_from_0_to_1(page)
    # The request's own threshold and number of similar questions.
    page.get_by_label("Confidence threshold").fill("0.99")
    page.get_by_label("Similar questions").fill("3")
    question.fill("how do I normalise a vector?")
    question.press("Enter")
    reply = page.locator(".bubble.bot").last
    expect(reply).to_contain_text("below the threshold 0.990")
    expect(reply.locator(".similar li")).to_have_count(3)
    screenshot(page, "qa")
    # By words only: every candidate has a rank by words and none by meaning.
    page.get_by_label("Search by").select_option("lexical")
    question.fill("tanimoto jaccard")
    question.press("Enter")
    reply = page.locator(".bubble.bot").last
    expect(reply.locator(".similar li").first).to_be_visible()
    origins = reply.locator(".similar .origin").all_inner_texts()
    assert origins and all(o.startswith("words #") for o in origins), origins
    page.get_by_label("Search by").select_option("hybrid")
    # An API error: a collection that does not exist, reported with the API's message.
    choose_collection(page, "no_such")
    expect(page.get_by_role("button", name="Load the sample into “no_such”")).to_be_visible()
    question.fill("anything")
    page.get_by_role("button", name="Ask").click()
    alert = page.locator(".bubble.bot").last.get_by_role("alert")
    expect(alert).to_contain_text("no collection 'no_such'")
    expect(alert).to_contain_text("HTTP 404")


def test_a_collection_name_is_checked_as_it_is_typed(site: str, page: Page) -> None:
    page.goto(site + "#/qa")
    name = page.get_by_label("Collection", exact=True)
    hint = page.locator(".data-hint")
    expect(page.locator(".size")).not_to_be_empty()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    bad_names = ["Faq", "2faq", "a__b", "faq_", "my faq", "faq-1"]
    for bad in bad_names:
        name.fill(bad)
        expect(hint).to_have_text(f"{NAME_RULE} Still showing “faq”.")
        expect(name).to_have_attribute("aria-invalid", "true")
        name.press("Tab")  # a change, which a valid name would act on
        expect(page.get_by_role("button", name="Load the sample into “faq”")).to_be_visible()
    sent = [url for url in requested for bad in bad_names if quote(bad) in url]
    assert not sent, sent
    choose_collection(page, "faq_2")
    expect(name).to_have_attribute("aria-invalid", "false")
    expect(hint).to_be_hidden()
    expect(page.locator(".size")).to_contain_text("There is no collection “faq_2” yet")


def test_qa_data_management(site: str, page: Page, tmp_path: Path) -> None:
    page.goto(site + "#/qa")
    choose_collection(page, "notes")
    expect(page.locator(".size")).to_contain_text("There is no collection “notes” yet")
    page.get_by_role("button", name="Create “notes”").click()
    expect(page.locator(".size")).to_have_text("0 Q&A pairs in “notes”")
    assert api(site, "qa/collections/notes").json()["count"] == 0
    expect(page.locator(".job-history")).to_contain_text("No loads into “notes” yet.")
    # A load with one bad row: the item error is listed in the live panel.
    upload = tmp_path / "notes.csv"
    upload.write_text(
        "question,answer\nWhat is a test?,A check.\nWhat is a fact?,A true thing.\n"
        "No answer here?,\nWhat is a note?,A short text.\n"
    )
    page.get_by_label("Load a CSV").set_input_files(upload)
    job = live_job(page)
    expect(job.locator(".job-status")).to_contain_text("added 3")
    expect(job.locator(".item-errors")).to_contain_text("1 item could not be loaded")
    expect(page.locator(".size")).to_have_text("3 Q&A pairs in “notes”")
    # A file the app cannot read at all: refused before any job, with the API's reason.
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    page.get_by_label("Load a CSV").set_input_files(bad)
    expect(page.locator(".jobs").get_by_role("alert").first).to_contain_text("cannot load .txt")
    # Another collection: the panels of this one go; back here, its job history shows.
    choose_collection(page, "other")
    expect(page.locator(".size")).to_contain_text("There is no collection “other” yet")
    expect(page.locator(".jobs > *")).to_have_count(0)
    choose_collection(page, "notes")
    expect(page.locator(".jobs > *")).to_have_count(0)
    history = page.locator(".job-history .history-entry")
    expect(history).to_have_count(1)
    expect(history.locator(".job-status")).to_contain_text("notes.csv: succeeded")
    expect(history.locator(".job-status")).to_contain_text("added 3, duplicates 0, failed 1")
    expect(history.locator(".item-errors li")).to_have_text(
        re.compile(r"line 4: answer: .*at least 1 character")
    )
    # Browse, open one, delete it.
    browser = open_items(page)
    expect(browser.locator(".range")).to_have_text("1\N{EN DASH}3 of 3 Q&A pairs")
    titles = sorted(browser.locator(".result-title").all_inner_texts())
    assert titles == ["What is a fact?", "What is a note?", "What is a test?"]
    dialog = open_item(page, "What is a test?")
    expect(dialog).to_contain_text("A check.")
    assert_controls_labelled(page)
    screenshot(page, "qa-item")
    deleted = field_of(dialog, "Id")
    kept = [i["id"] for i in api(site, "qa/collections/notes/items").json() if i["id"] != deleted]
    delete_item(page, dialog, "What is a test?", "notes")
    expect(page.locator(".size")).to_have_text("2 Q&A pairs in “notes”")
    expect(card(page, "What is a test?")).to_have_count(0)
    expect(browser.locator(".result")).to_have_count(2)
    assert api(site, f"qa/collections/notes/items/{deleted}").status_code == 404
    assert api(site, "qa/collections/notes").json()["count"] == 2
    screenshot(page, "qa-data")
    # Drop it, after a confirmation.
    drop_collection(page, site, "qa", "notes", "Q&A pairs")
    assert_dropped(site, "qa", "notes", [f"qa/collections/notes/items/{i}" for i in kept])


def test_a_load_can_be_cancelled(site: str, page: Page, tmp_path: Path) -> None:
    upload = tmp_path / "many.csv"
    rows = "".join(
        f"Question number {i} about topic {i * 7919 % 1000}?,Answer {i}.\n" for i in range(20_000)
    )
    upload.write_text("question,answer\n" + rows)
    page.goto(site + "#/qa")
    choose_collection(page, "many")
    page.get_by_label("Load a CSV").set_input_files(upload)
    job = page.locator(".jobs .job").first
    expect(job).to_have_attribute("data-status", "running", timeout=LOAD_TIMEOUT_MS)
    job.get_by_role("button", name="Cancel").click()
    expect(job).to_have_attribute("data-status", "cancelled", timeout=LOAD_TIMEOUT_MS)
    expect(job.get_by_role("button", name="Cancel")).to_have_count(0)
    added = int(
        re.search(r"added ([\d,]+)", job.locator(".job-status").inner_text())[1].replace(",", "")
    )
    assert added < 20_000


def results_titles(page: Page) -> list[str]:
    return page.locator(".results .result-title").all_inner_texts()


def checked_mode(page: Page) -> str:
    return page.locator(".switch input:checked + label").inner_text()


def test_images_page(site: str, page: Page, tmp_path: Path) -> None:
    page.goto(site + "#/images")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Reverse image search")
    load_sample(page, "photos")
    total = shown_count(page)
    assert total > 12  # two pages of items
    assert_controls_labelled(page)
    query = tmp_path / "coffee.png"
    query.write_bytes(encoded(photos()["coffee"]))
    page.get_by_label("Query image").set_input_files(query)
    results = page.locator(".results .result")
    expect(results.first.locator(".result-title")).to_contain_text("coffee")
    assert all_pictures_decoded(page, ".results .result img") > 1
    first_score = float(results.first.locator(".score-value").inner_text().split()[-1])
    assert first_score > 0.9
    assert_meters_run_from_0_to_1(page)
    # How many, and only one label (the sample's folders are its labels).
    page.get_by_label("Results").fill("3")
    page.get_by_label("Results").press("Enter")
    expect(results).to_have_count(3)
    page.get_by_label("With label").fill("textures")
    page.get_by_label("With label").press("Enter")
    expect(page.locator(".results h3")).to_have_text(
        "Most similar to coffee.png labelled “textures”"
    )
    expect(results).to_have_count(3)
    subtitles = results.locator(".muted").all_inner_texts()
    assert all(s.startswith("textures") for s in subtitles), subtitles
    page.get_by_label("With label").fill("")
    page.get_by_label("Results").fill("12")
    page.get_by_label("Results").press("Enter")
    expect(results.first.locator(".result-title")).to_contain_text("coffee")
    # A card's near-duplicates: the switch says so, and the threshold is the one shown.
    expect(page.get_by_label("Near-duplicate threshold")).to_be_hidden()
    target = results.nth(1).locator(".result-title").inner_text()
    results.nth(1).get_by_role("button", name="Near-duplicates").click()
    expect(page.locator(".results h3")).to_have_text(f"Near-duplicates of {target}")
    assert checked_mode(page) == "Near-duplicates"
    expect(page.get_by_label("Near-duplicate threshold")).to_be_visible()
    expect(page.get_by_label("Results")).to_be_hidden()
    expect(page.locator(".preview")).to_contain_text(f"{target} (stored)")
    page.get_by_label("Near-duplicate threshold").fill("0.05")
    page.get_by_label("Near-duplicate threshold").press("Enter")
    expect(page.locator(".results .muted").first).to_contain_text("at or above similarity 0.05")
    scores = [float(t.split()[-1]) for t in results.locator(".score-value").all_inner_texts()]
    assert scores and min(scores) >= 0.05, scores
    # The switch back to similar runs the same query in that mode.
    page.get_by_role("radio", name="Similar images").check()
    expect(page.locator(".results h3")).to_have_text(f"More like {target}")
    assert target not in results_titles(page)
    # More like this, from a result.
    more = results.nth(0).locator(".result-title").inner_text()
    results.nth(0).get_by_role("button", name="More like this").click()
    expect(page.locator(".results h3")).to_have_text(f"More like {more}")
    assert checked_mode(page) == "Similar images"
    all_pictures_decoded(page, ".results .result img")
    # The near-duplicates of a dropped file: the photo itself is its own near-duplicate.
    page.get_by_role("radio", name="Near-duplicates").check()
    page.get_by_label("Near-duplicate threshold").fill("")
    page.get_by_label("Query image").set_input_files(query)
    expect(page.locator(".results h3")).to_contain_text("Near-duplicates of coffee.png")
    expect(results.first.locator(".result-title")).to_contain_text("coffee")
    screenshot(page, "images")
    # An API error: a file that is not an image; no broken preview either.
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    page.get_by_label("Query image").set_input_files(text)
    alert = page.locator(".results").get_by_role("alert")
    expect(alert).to_contain_text("HTTP 415")
    expect(page.locator(".preview .no-preview")).to_be_visible()
    expect(page.locator(".preview img")).to_have_count(0)
    # The items, a page at a time, with their thumbnails.
    browser = open_items(page)
    expect(browser.locator(".range")).to_have_text(f"1\N{EN DASH}12 of {total} images")
    assert all_pictures_decoded(page, ".items-browser .result img") == 12
    browser.get_by_role("button", name="Next").click()
    expect(browser.locator(".range")).to_have_text(f"13\N{EN DASH}{total} of {total} images")
    assert all_pictures_decoded(page, ".items-browser .result img") == total - 12
    expect(browser.get_by_role("button", name="Next")).to_be_disabled()
    title = browser.locator(".result-title").first.inner_text()
    dialog = open_item(page, title)
    all_pictures_decoded(page, "dialog .item-picture")
    assert field_of(dialog, "Format") in {"JPEG", "PNG"}
    assert re.fullmatch(r"\d+\N{MULTIPLICATION SIGN}\d+ px, [\d,]+ bytes", field_of(dialog, "Size"))
    item = field_of(dialog, "Id")
    screenshot(page, "images-item")
    delete_item(page, dialog, title, "photos")
    expect(page.locator(".size")).to_have_text(f"{total - 1} images in “photos”")
    expect(card(page, title)).to_have_count(0)
    for media in ["", "/thumbnail", "/original"]:
        assert api(site, f"images/collections/photos/items/{item}{media}").status_code == 404
    kept = api(site, "images/collections/photos/items").json()[0]["id"]
    drop_collection(page, site, "images", "photos", "images")
    assert_dropped(site, "images", "photos", [f"images/collections/photos/items/{kept}/thumbnail"])


def boxes_overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


def assert_switch_clear_of_other_controls(page: Page) -> None:
    """The Find switch's options overlap no other control on screen, nor each other."""
    boxes = page.evaluate(
        """() => {
            const box = (n) => {
                const r = n.getBoundingClientRect();
                return { x: r.x, y: r.y, width: r.width, height: r.height, what: n.outerHTML };
            };
            const shown = (n) => n.getClientRects().length > 0
                && !n.classList.contains("visually-hidden");
            const options = [...document.querySelectorAll(".switch label")].map(box);
            const others = [...document.querySelectorAll(
                "main label, main input, main button, main select, main .drop, main .preview")]
                .filter((n) => !n.closest(".switch") && shown(n)).map(box);
            return { options, others };
        }"""
    )
    options, others = boxes["options"], boxes["others"]
    assert len(options) == 2 and len(others) > 5, boxes
    assert not boxes_overlap(options[0], options[1]), options
    for option in options:
        assert option["x"] >= 0 and option["x"] + option["width"] <= PHONE["width"], option
        for other in others:
            assert not boxes_overlap(option, other), (option["what"], other["what"])


def test_pages_on_a_phone(site: str, phone: Page, tmp_path: Path) -> None:
    phone.goto(site + "#/images")
    expect(phone.locator(".size")).not_to_be_empty()
    assert_switch_clear_of_other_controls(phone)
    phone.get_by_role("radio", name="Near-duplicates").check()
    expect(phone.get_by_label("Near-duplicate threshold")).to_be_visible()
    assert_switch_clear_of_other_controls(phone)
    # A query the browser cannot decode: a note, not a broken picture.
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    phone.get_by_label("Query image").set_input_files(text)
    expect(phone.locator(".results").get_by_role("alert")).to_be_visible()
    expect(phone.locator(".preview .no-preview")).to_have_text(
        "No preview: the browser cannot show this file as a picture."
    )
    no_broken_pictures(phone)
    screenshot(phone, "images-phone")
    for app, collection in [("qa", "faq"), ("molecules", "drugs")]:
        phone.goto(f"{site}#/{app}")
        expect(phone.locator(".size")).to_contain_text(f"“{collection}”")
        assert phone.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        screenshot(phone, f"{app}-phone")


def test_molecules_page(site: str, page: Page) -> None:
    page.goto(site + "#/molecules")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Molecular similarity search")
    load_sample(page, "drugs")
    total = shown_count(page)
    assert total > 12
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
    assert_meters_run_from_0_to_1(page)
    page.get_by_label("Results").fill("5")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(results).to_have_count(5)
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
    # The items: each drawn, with its name and SMILES; one opened in full.
    browser = open_items(page)
    expect(browser.locator(".range")).to_have_text(f"1\N{EN DASH}12 of {total:,} molecules")
    assert all_pictures_decoded(page, ".items-browser .result img") == 12
    first = browser.locator(".result").first
    name = first.locator(".result-title").inner_text()
    smiles = first.locator(".muted").inner_text()
    assert name and smiles
    dialog = open_item(page, name)
    all_pictures_decoded(page, "dialog .item-picture")
    assert field_of(dialog, "Name") == name
    assert field_of(dialog, "SMILES").replace("\n", "") == smiles.replace("\n", "")
    item = api(site, f"molecules/collections/drugs/items/{field_of(dialog, 'Id')}").json()
    assert item["name"] == name and item["smiles"] == field_of(dialog, "SMILES")
    assert re.fullmatch(r"CHEMBL\d+", field_of(dialog, "Source id"))
    screenshot(page, "molecules-item")
    dialog.get_by_role("button", name="Close").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.get_by_role("button", name=f"Open {name}")).to_be_focused()
    page.keyboard.press("Enter")  # the keyboard opens it again, and Escape closes it
    expect(page.get_by_role("dialog").get_by_role("heading")).to_have_text(name)
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.get_by_role("button", name=f"Open {name}")).to_be_focused()


# Whether two characters look different in the page's font (drawn on a canvas).
GLYPHS_DIFFER = """([a, b]) => {
    const font = `32px ${getComputedStyle(document.body).fontFamily}`;
    const draw = (text) => {
        const canvas = document.createElement("canvas");
        canvas.width = canvas.height = 48;
        const context = canvas.getContext("2d");
        context.font = font;
        context.fillText(text, 4, 36);
        return context.getImageData(0, 0, 48, 48).data.join(",");
    };
    return draw(a) !== draw(b);
}"""


def test_qa_collection_in_chinese(site: str, page: Page) -> None:
    """The encoder is chosen when the collection is created; questions then work in Chinese."""
    page.goto(site + "#/qa")
    choose_collection(page, "chaye")
    page.locator("details.options summary").click()
    encoder = page.get_by_label("encoder")
    expect(encoder).to_have_value("all-MiniLM-L6-v2")
    encoder.select_option("multilingual-e5-small")
    page.get_by_role("button", name="Create “chaye”").click()
    expect(page.locator(".size")).to_have_text("0 Q&A pairs in “chaye”")
    chosen = api(site, "qa/collections/chaye").json()["options"]
    assert chosen == {"encoder": "multilingual-e5-small"}
    for question, answer in [
        ("绿茶应该用多少度的水冲泡", "八十度左右的水"),
        ("茶叶应该怎样保存", "密封避光干燥"),
    ]:
        added = httpx.post(
            f"{site}qa/collections/chaye/items",
            json={"question": question, "answer": answer},
            timeout=30,
        )
        assert added.status_code == 201, added.text
    question = page.get_by_label("Your question")
    question.fill("泡绿茶时水温多高合适")
    question.press("Enter")
    reply = page.locator(".bubble.bot").last
    expect(reply.locator(".similar li").first).to_contain_text("绿茶应该用多少度的水冲泡")
    # Rendered, not just in the DOM: without a font for them, every character would be the
    # same empty box.
    assert page.evaluate(GLYPHS_DIFFER, ["绿", "茶"]), "Chinese renders as boxes"
    screenshot(page, "qa-chinese")


def test_molecule_collection_with_options(site: str, page: Page, tmp_path: Path) -> None:
    page.goto(site + "#/molecules")
    choose_collection(page, "mine")
    page.locator("details.options summary").click()
    assert_controls_labelled(page)
    # Milvus Lite has no binary vectors: the API's reason, and nothing created.
    page.get_by_label("index").select_option("BIN_IVF_FLAT")
    page.get_by_role("button", name="Create “mine”").click()
    alert = page.locator(".manage").get_by_role("alert")
    expect(alert).to_contain_text("BIN_IVF_FLAT needs a Milvus server")
    expect(alert).to_contain_text("HTTP 422")
    assert api(site, "molecules/collections/mine").status_code == 404
    screenshot(page, "molecules-options")
    page.get_by_label("index").select_option("BIN_FLAT")
    page.get_by_label("radius").fill("3")
    page.get_by_label("bits").fill("1024")
    page.get_by_role("button", name="Create “mine”").click()
    expect(page.locator(".size")).to_have_text("0 molecules in “mine”")
    chosen: dict[str, Any] = api(site, "molecules/collections/mine").json()["options"]
    assert chosen == {"radius": 3, "bits": 1024, "index": "BIN_FLAT", "nlist": 1024, "nprobe": 64}
    # A load by drag and drop, with RDKit's reasons for what it could not read.
    upload = tmp_path / "mine.smi"
    upload.write_text("CCO ethanol\nC1CC( broken\nc1ccccc1 benzene\n")
    files = page.evaluate_handle(
        """([name, text]) => {
            const data = new DataTransfer();
            data.items.add(new File([text], name));
            return data;
        }""",
        [upload.name, upload.read_text()],
    )
    zone = page.locator("label.drop", has_text="Load a .smi")
    zone.dispatch_event("dragover", {"dataTransfer": files})
    zone.dispatch_event("drop", {"dataTransfer": files})
    job = live_job(page)
    expect(job.locator(".job-status")).to_contain_text("added 2")
    expect(job.locator(".item-errors li")).to_contain_text("SMILES Parse Error")
    expect(page.locator(".size")).to_have_text("2 molecules in “mine”")
    browser = open_items(page)
    expect(browser.locator(".result")).to_have_count(2)
    assert sorted(browser.locator(".result-title").all_inner_texts()) == ["benzene", "ethanol"]
    assert all_pictures_decoded(page, ".items-browser .result img") == 2
    dialog = open_item(page, "benzene")
    assert field_of(dialog, "SMILES") == "c1ccccc1"
    benzene = field_of(dialog, "Id")
    delete_item(page, dialog, "benzene", "mine")
    expect(page.locator(".size")).to_have_text("1 molecules in “mine”")
    expect(browser.locator(".result-title")).to_have_text(["ethanol"])
    assert api(site, f"molecules/collections/mine/items/{benzene}").status_code == 404
    ethanol = api(site, "molecules/collections/mine/items").json()[0]["id"]
    drop_collection(page, site, "molecules", "mine", "molecules")
    assert_dropped(site, "molecules", "mine", [f"molecules/collections/mine/items/{ethanol}"])


def test_an_app_alone_serves_only_its_page(
    tmp_path: Path, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_embedded_storage(monkeypatch, tmp_path, load_sample=False)
    with (
        serving(create_app(MOLECULES, MoleculeSettings())) as url,
        tab(browser, url, DESKTOP) as alone,
    ):
        alone.goto(url)
        expect(alone.get_by_role("heading", level=1)).to_contain_text("Molecular similarity")
        expect(alone.locator("#nav a")).to_have_count(1)
        expect(alone.locator(".size")).to_contain_text("There is no collection “drugs” yet")
        expect(alone.get_by_role("button", name="Load the sample into “drugs”")).to_be_visible()
        docs = alone.locator("footer a")
        expect(docs).to_have_attribute("href", "docs")
        alone.goto(url + "docs")
        expect(alone.locator("#swagger-ui")).to_be_attached()


def test_video_page(site: str, page: Page, test_videos: SampleVideos, tmp_path: Path) -> None:
    page.goto(site + "#/video")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Video analysis")
    choose_collection(page, "moments")
    page.get_by_label("Load videos (mp4, mov, webm, mkv, avi) into “moments”").set_input_files(
        test_videos.clip
    )
    job = live_job(page)
    expect(job.locator(".job-status")).to_contain_text("s of video")
    expect(page.locator(".library details.video-item")).to_have_count(1)
    assert_controls_labelled(page)
    # Find by picture: the clip's moment with the coffee cup, on a timeline.
    query = tmp_path / "coffee.png"
    query.write_bytes(encoded(clip_pictures()["coffee"]))
    page.get_by_label("Query picture").set_input_files(query)
    result = page.locator(".video-result").first
    expect(result.locator("h4")).to_contain_text("clip.mp4")
    all_pictures_decoded(page, ".video-result .moment img")
    start, end = CLIP.spans["coffee"]
    best = result.locator(".moment").first
    expect(best.locator(".moment-time")).to_have_text("0:10\u20130:14")
    assert_meters_run_from_0_to_1(page)
    # A click on the moment seeks the player there, and the browser really plays the file.
    result.locator(".timeline .marker").first.click()
    page.wait_for_function(
        "() => { const v = document.querySelector('video.player');"
        f" return v.readyState >= 1 && Math.abs(v.currentTime - {start}) <= 1; }}",
        timeout=30_000,
    )
    assert page.evaluate("() => document.querySelector('video.player').error") is None
    expect(page.locator(".now-playing")).to_contain_text("clip.mp4 from 0:10")
    screenshot(page, "video")
    # By words: the shot labelled espresso, the word marked.
    page.get_by_role("radio", name="Words").check()
    page.get_by_label("Words to find").fill("espresso")
    page.get_by_label("Words to find").press("Enter")
    expect(page.locator(".results h3")).to_have_text("Moments with “espresso”")
    expect(page.locator(".video-result mark").first).to_have_text("espresso")
    page.locator(".video-result .moment").first.click()
    page.wait_for_function(
        f"() => Math.abs(document.querySelector('video.player').currentTime - {start}) <= 1"
    )
    assert end > start
    # The storyboard: a shot per cut, each a seek.
    page.locator(".library details.video-item summary").click()
    shots = page.locator(".library .storyboard .moment")
    expect(shots).to_have_count(len(CLIP.cuts))
    expect(shots.nth(4).locator(".shot-text")).to_have_text("\u201cQUARTERLY RESULTS 2026\u201d")
    all_pictures_decoded(page, ".library .storyboard img")
    shots.nth(3).click()
    page.wait_for_function(
        f"() => Math.abs(document.querySelector('video.player').currentTime - {CLIP.cuts[3]}) <= 1"
    )
    screenshot(page, "video-storyboard")
    # Copies: an altered excerpt of the clip is found where it comes from, a click plays it.
    page.get_by_role("radio", name="Copied clip").check()
    page.get_by_label("Query clip (a video: where was its footage copied from?)").set_input_files(
        test_videos.excerpt
    )
    copy = page.locator(".video-result").first
    expect(copy.locator("h4")).to_contain_text("clip.mp4")
    expect(copy.locator(".copies .moment")).to_have_count(1)
    copy.locator(".copies .moment").click()
    page.wait_for_function(
        "() => Math.abs(document.querySelector('video.player').currentTime"
        f" - {EXCERPT['start']}) <= 1"
    )
    screenshot(page, "video-copies")
    # The only stored video has no copies but itself.
    page.get_by_role("button", name="Find copies of this video").click()
    expect(page.locator(".results")).to_contain_text("No copied footage found.")
    # People: the astronaut's face, unknown at first, named on the page; then found by person.
    page.get_by_role("button", name="Who is in it").click()
    cluster = page.locator(".who .face-cluster")
    expect(cluster).to_have_count(1)
    all_pictures_decoded(page, ".who img.face")
    cluster.get_by_label("Name this face").fill("Eileen Collins")
    cluster.get_by_role("button", name="Name").click()
    expect(page.locator(".who .person-lane")).to_contain_text("Eileen Collins")
    page.get_by_role("radio", name="Person").check()
    page.locator(".people .person", has_text="Eileen Collins").click()
    expect(page.locator(".results h3")).to_have_text("Where Eileen Collins appears")
    appearance = page.locator(".video-result").first
    expect(appearance.locator("h4")).to_contain_text("clip.mp4")
    appearance.locator(".appearances .moment").first.click()
    face_start, face_end = CLIP.spans["astronaut"]
    page.wait_for_function(
        f"() => Math.abs(document.querySelector('video.player').currentTime - {face_start}) <= 1"
    )
    assert face_end > face_start
    screenshot(page, "video-people")
    # A file that is not a video: refused with the reason, nothing loaded.
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("not a video")
    page.get_by_label("Load videos (mp4, mov, webm, mkv, avi) into “moments”").set_input_files(
        not_video
    )
    expect(page.locator(".jobs .job").first.get_by_role("alert")).to_contain_text(
        "not a video file"
    )
    expect(page.locator(".library details.video-item")).to_have_count(1)


def test_video_player_seeks_in_webkit(site: str, test_videos: SampleVideos, tmp_path: Path) -> None:
    """Safari's engine: a click on a moment seeks the page's player, also to a part of the
    video not yet downloaded (a Range request, answered 206), and the H.264/AAC copy a load
    makes of a video browsers cannot play seeks too."""
    published = web_copy(test_videos.clip, tmp_path / "published.mp4")
    videos = (test_videos.clip, test_videos.with_sound, published)
    job = load_over_http(site, "webkit", videos)
    assert job["status"] == "succeeded" and job["added"] == 3, job
    listed = httpx.get(site + "video/collections/webkit/videos", timeout=30).json()["videos"]
    by_name = {video["name"]: video for video in listed}
    recorded = SERVED[site]
    with webkit() as browser:
        assert "Safari" in browser.run("return navigator.userAgent")
        browser.go(site + "#/video")
        collection = "//label[normalize-space()='Collection']/following-sibling::input"
        browser.type(collection, "webkit")
        browser.type(collection, TAB)
        browser.click("//label[normalize-space()='Words']")
        # The coffee shot of the clip, found by its label.
        start = CLIP.spans["coffee"][0]
        seek_by_words(browser, "espresso", by_name[test_videos.clip.name], start)
        browser.screenshot("video-webkit")
        # The title card at 20 s of the published copy, sent slowly: the player asks for
        # the part it needs.
        recorded.video_pause = 0.2  # before each 64 KB: 320 KB/s
        try:
            seek_by_words(browser, "quarterly", by_name[published.name], CLIP.cuts[4])
        finally:
            recorded.video_pause = 0.0
        asked = [
            served
            for served in recorded.served
            if served.path.endswith(f"/items/{by_name[published.name]['id']}/original")
        ]
        ranges = [served for served in asked if served.range]
        assert ranges and all(served.status == 206 for served in ranges), asked
        # The AVI's playable copy, in WebKit's own player.
        avi = by_name[test_videos.with_sound.name]
        assert avi["player_url"].endswith("/playable")
        browser.go(avi["player_url"])
        browser.wait_for("const v = document.querySelector('video'); return v && v.readyState >= 1")
        browser.run("const v = document.querySelector('video'); v.pause(); v.currentTime = 2.5")
        seeked = browser.wait_for(
            "const v = document.querySelector('video');"
            " return v.readyState >= 2 && !v.seeking && {time: v.currentTime, error: v.error,"
            " duration: v.duration};"
        )
        assert seeked["error"] is None and abs(seeked["time"] - 2.5) < 0.1, seeked
        assert abs(seeked["duration"] - avi["duration"]) < 0.2, (seeked, avi)


def load_over_http(site: str, collection: str, videos: Sequence[Path]) -> dict[str, Any]:
    """Load files through the API (the UI's upload is tested in Chromium); the ended job."""
    files = [("file", (path.name, path.read_bytes())) for path in videos]
    accepted = httpx.post(site + f"video/collections/{collection}/loads", files=files, timeout=60)
    assert accepted.status_code == 202, accepted.text
    deadline = time.monotonic() + LOAD_TIMEOUT_MS / 1000
    while (job := api(site, f"video/jobs/{accepted.json()['id']}").json())["status"] in (
        "queued",
        "running",
    ):
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
    return job


def seek_by_words(
    browser: WebKit, words: str, video: dict[str, Any], start: float
) -> dict[str, Any]:
    """Search the words and click the first moment of ``video``: the player, once it shows
    a picture within a second of ``start`` (its time)."""
    search = "//input[@type='search' and contains(@placeholder, 'espresso')]"
    browser.run("document.querySelector('.results').replaceChildren()")
    browser.clear(search)
    browser.type(search, words + ENTER)
    browser.click(
        f"(//article[@class='video-result'][.//h4[contains(., '{video['name']}')]]"
        "//button[@class='moment'])[1]"
    )
    playing: dict[str, Any] = browser.wait_for(
        "const v = document.querySelector('video.player');"
        " return v.readyState >= 2 && !v.seeking && v.currentSrc === arguments[0]"
        " && Math.abs(v.currentTime - arguments[1]) <= 1 && {time: v.currentTime, error: v.error};",
        video["player_url"],
        start,
        state="const v = document.querySelector('video.player'); return {time: v.currentTime,"
        " ready: v.readyState, seeking: v.seeking, source: v.currentSrc, error: v.error};",
    )
    assert playing["error"] is None, playing
    return playing
