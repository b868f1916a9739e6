"""Every tutorial in the repository, run as a reader would run it (see ``tests/tutorial.py``).

Each README gets a fresh demo with fresh data on a free port; every command block runs and
its shown output is compared with the real one, or the block says why it is not run here.
"""

from pathlib import Path

import pytest

from tests.tutorial import ROOT, run_tutorial, steps

TUTORIALS = [
    "README.md",
    "solutions/qa_chatbot/README.md",
    "solutions/image_search/README.md",
    "solutions/molecular_search/README.md",
    "solutions/video_analysis/README.md",
    "docker/README.md",
    "benchmarks/README.md",
    "docs/your-own-app.md",  # builds a fifth app from its file blocks, tests it, serves it
]  # frontend/README.md has no commands to run


@pytest.mark.parametrize("tutorial", TUTORIALS)
def test_tutorial_shows_what_really_happens(tutorial: str) -> None:
    report = run_tutorial(ROOT / tutorial)
    print(
        f"{tutorial}: {report.written} files written, {report.ran} blocks run, "
        f"{len(report.skipped)} not run"
    )
    for line, reason in report.skipped:
        print(f"  line {line} not run: {reason}")
    assert report.ran or report.skipped, "no command block found"
    assert not report.problems, "\n".join(report.problems)


def test_every_readme_with_commands_is_a_tutorial() -> None:
    """A README with command blocks that nobody runs would drift again."""
    readmes = {
        str(path.relative_to(ROOT))
        for path in ROOT.rglob("README.md")
        if not {".venv", ".cache", "data", "node_modules", "static"} & set(path.parts)
        and steps(Path(path).read_text())
    }
    assert readmes <= set(TUTORIALS), readmes - set(TUTORIALS)


def test_every_setting_is_in_the_readme_table() -> None:
    from common.launcher import installed
    from solutions import APPS

    readme = (ROOT / "README.md").read_text()
    table = [line for line in readme.splitlines() if line.startswith("| `SEARCH_")]
    for solution in installed(APPS):
        for name in solution.settings_model.model_fields:
            assert any(f"`SEARCH_{name.upper()}`" in row for row in table), name
