"""The fifth app of ``docs/your-own-app.md``, built from the guide's file blocks in a fresh
copy of the repository: its page as a user sees it, its dependency group, its compose stack.

``tests/test_tutorials.py`` follows the same guide command by command (the app's own tests on
both backend pairs, the demo serving it, its search); this module checks what those commands
cannot: the page in a real browser and that the stack would build.
"""

import subprocess
import tomllib
from collections.abc import Iterator
from importlib.metadata import distribution
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement
from playwright.sync_api import expect

from common.settings import Settings
from tests.browser import chromium, screenshot, watched_tab
from tests.compose import load_raw
from tests.test_docker import check_stack, schema_errors
from tests.tutorial import ROOT, Demo, repository_copy, steps, write_file

GUIDE = ROOT / "docs" / "your-own-app.md"


@pytest.fixture(scope="module")
def built() -> Iterator[Path]:
    """A copy of the repository with every file the guide writes, and its compose file."""
    with repository_copy() as workdir:
        for step in steps(GUIDE.read_text()):
            if step.file is not None:
                assert write_file(workdir, step.file) == [], step.line
            elif step.skip is None and "> docker/recipes/compose.yaml" in step.command:
                command = ["bash", "-euo", "pipefail", "-c", step.command]
                subprocess.run(command, cwd=workdir, check=True)
        assert (workdir / "docker" / "recipes" / "compose.yaml").is_file()
        yield workdir


@pytest.fixture(scope="module")
def site(built: Path) -> Iterator[str]:
    """The launcher of the copy (every app, the recipe search among them) on a free port,
    fresh data, its samples loaded."""
    launcher = Demo(built, command=".venv/bin/python -m solutions")
    try:
        launcher.start()
        jobs = httpx.get(launcher.url + "recipes/jobs", timeout=5).json()
        assert jobs and all(job["status"] == "succeeded" for job in jobs), jobs
        yield launcher.url
    finally:
        launcher.stop()


def test_the_page_shows_in_the_menu_and_finds_recipes(site: str) -> None:
    with chromium() as browser, watched_tab(browser) as tab:
        page = tab.page
        page.goto(site)
        page.get_by_role("link", name="Recipe search", exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Recipe search")
        expect(page.get_by_role("heading", name="Search recipes")).to_be_visible()
        page.get_by_label("What do you feel like?").fill("a chocolate dessert")
        page.get_by_role("button", name="Search", exact=True).click()
        results = page.locator("ol.results > li")
        expect(results).to_have_count(5)
        expect(results.first.get_by_role("heading")).to_have_text("Chocolate mousse")
        expect(results.first.locator("meter")).to_have_count(1)
        screenshot(page, "recipes")
        assert tab.foreign_requests(site) == []
        assert tab.page_errors == [] and tab.console_errors == []


def test_the_dependency_group_is_installed_and_names_the_qa_one(built: Path) -> None:
    project = tomllib.loads((built / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    [requirement] = [Requirement(r) for r in extras["recipes"]]
    assert requirement.name == project["name"] and requirement.extras == {"qa"}
    for needed in extras["qa"]:
        wanted = Requirement(needed)
        assert distribution(wanted.name).version in wanted.specifier, needed


def test_the_compose_stack_is_the_qa_one_renamed(built: Path) -> None:
    stack = built / "docker" / "recipes" / "compose.yaml"
    raw = load_raw(stack)
    assert schema_errors(raw) == []
    check_stack(stack, Settings, built)
    assert raw["name"] == "recipes"
    assert raw["services"]["app"]["build"]["args"] == {
        "APP": "recipes",
        "EXTRA": "recipes",
        "TORCH": "cpu",
    }
    qa = load_raw(built / "docker" / "qa_chatbot" / "compose.yaml")
    assert {k: v for k, v in raw["services"].items() if k != "app"} == {
        k: v for k, v in qa["services"].items() if k != "app"
    }
