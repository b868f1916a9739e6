"""Copied footage found and aligned, on both backend pairs: an excerpt of a stored video,
cropped, halved, at another frame rate and encoded again, is matched to where it comes from;
a stored video finds its copies (and not itself); footage nobody stored finds nothing."""

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from common import Match
from solutions.video_analysis.copies import QueryFrame, find_copies
from solutions.video_analysis.tests.fixtures import (
    COCKATOO_EXCERPT,
    EXCERPT,
    SAMPLE,
    SampleVideos,
)
from solutions.video_analysis.tests.test_video_analysis import load, video_named
from tests.helpers import snapshot

# The excerpt's clip footage starts after 3 s of another picture.
LEAD_IN = 3.0
# Aligned times are placed to within one sampled frame.
TOLERANCE = 1.0


def copies_of(client: TestClient, path: Path, **form: Any) -> dict[str, Any]:
    files = {"file": (path.name, path.read_bytes(), "video/mp4")}
    response = client.post("/collections/clips/copies", files=files, data=form)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def assert_aligned(
    segment: dict[str, Any], query: tuple[float, float], stored: tuple[float, float]
) -> None:
    found = (segment["query_start"], segment["query_end"], segment["start"], segment["end"])
    for got, want in zip(found, (*query, *stored), strict=True):
        assert abs(got - want) <= TOLERANCE, (segment, query, stored)


@pytest.fixture(scope="module")
def loaded(shared_video: TestClient, test_videos: SampleVideos) -> TestClient:
    job = load(shared_video, test_videos.clip, test_videos.short, SAMPLE / "cockatoo.mp4")
    assert job["status"] == "succeeded" and job["added"] == 3, job
    return shared_video


def test_an_altered_excerpt_is_found_where_it_comes_from(
    loaded: TestClient, test_videos: SampleVideos
) -> None:
    found = copies_of(loaded, test_videos.excerpt)
    length = EXCERPT["end"] - EXCERPT["start"]
    assert found["duration"] == pytest.approx(LEAD_IN + length, abs=0.2)
    [copy] = found["results"]  # not the other stored videos
    assert copy["video"]["name"] == "clip.mp4"
    [segment] = copy["segments"]
    assert_aligned(segment, (LEAD_IN, LEAD_IN + length), (EXCERPT["start"], EXCERPT["end"]))
    assert copy["seconds"] == pytest.approx(segment["query_end"] - segment["query_start"])
    assert segment["score"] >= 0.6 and segment["frames"] >= length - 2


def test_real_footage_cropped_and_at_another_frame_rate_is_found(
    loaded: TestClient, test_videos: SampleVideos
) -> None:
    start, end = COCKATOO_EXCERPT
    [copy] = copies_of(loaded, test_videos.cockatoo_excerpt)["results"]
    assert copy["video"]["name"] == "cockatoo.mp4"
    [segment] = copy["segments"]
    assert_aligned(segment, (0.0, end - start), (start, end))


def test_footage_nobody_stored_finds_nothing(loaded: TestClient, test_videos: SampleVideos) -> None:
    assert copies_of(loaded, test_videos.avi)["results"] == []


def test_a_stored_video_finds_its_copy_and_not_itself(
    loaded: TestClient, test_videos: SampleVideos
) -> None:
    job = load(loaded, test_videos.excerpt)
    assert job["added"] == 1, job
    clip, excerpt = video_named(loaded, "clip.mp4"), video_named(loaded, "excerpt.mp4")
    length = EXCERPT["end"] - EXCERPT["start"]
    response = loaded.get(f"/collections/clips/videos/{excerpt['id']}/copies")
    assert response.status_code == 200, response.text
    [copy] = response.json()["results"]
    assert copy["video"]["id"] == clip["id"]
    assert_aligned(
        copy["segments"][0], (LEAD_IN, LEAD_IN + length), (EXCERPT["start"], EXCERPT["end"])
    )
    # And the other way round: the source finds the excerpt, with the times swapped.
    [back] = loaded.get(f"/collections/clips/videos/{clip['id']}/copies").json()["results"]
    assert back["video"]["id"] == excerpt["id"]
    assert_aligned(
        back["segments"][0], (EXCERPT["start"], EXCERPT["end"]), (LEAD_IN, LEAD_IN + length)
    )
    # A stricter score than the altered copy reaches finds nothing.
    strict = loaded.get(f"/collections/clips/videos/{clip['id']}/copies?min_score=0.99")
    assert strict.json()["results"] == []


@pytest.mark.parametrize(
    ("kind", "status", "words"),
    [
        ("text", 415, "not a video file"),
        ("zip", 415, "not a video file"),
        ("empty", 415, "not a video file"),
        ("audio", 415, "no video stream"),
        ("huge", 422, "over the limit"),
        ("long", 422, "over the limit of 60 s"),
        ("cut", 422, "truncated or damaged"),
        ("still", 415, "a still picture"),
        ("bomb", 422, "over the limit"),
    ],
)
def test_a_query_that_is_not_a_usable_clip_is_refused(
    loaded: TestClient, test_videos: SampleVideos, kind: str, status: int, words: str
) -> None:
    before = snapshot(loaded)
    path = test_videos.bad[kind]
    response = loaded.post(
        "/collections/clips/copies", files={"file": (path.name, path.read_bytes())}
    )
    assert response.status_code == status, response.text
    assert words in response.json()["error"]["message"]
    assert snapshot(loaded) == before
    assert list(loaded.app.state.context.settings.upload_dir.iterdir()) == []  # type: ignore[attr-defined]
    assert loaded.get("/health/ready").status_code == 200


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/collections/nothing/videos/1/copies", 404),
        ("/collections/clips/videos/1/copies", 404),
        ("/collections/clips/videos/x/copies", 422),
        ("/collections/clips/videos/1/copies?min_score=2", 422),
        ("/collections/clips/videos/1/copies?top_k=0", 422),
    ],
)
def test_copies_of_an_unknown_video_or_with_bad_parameters(
    loaded: TestClient, url: str, status: int
) -> None:
    response = loaded.get(url)
    assert response.status_code == status, response.text
    assert "error" in response.json()


def test_a_query_clip_posted_to_an_unknown_collection(
    loaded: TestClient, test_videos: SampleVideos
) -> None:
    path = test_videos.short
    response = loaded.post(
        "/collections/nothing/copies", files={"file": (path.name, path.read_bytes())}
    )
    assert response.status_code == 404, response.text
    assert loaded.get("/collections/nothing").status_code == 404


def frames(times: list[float]) -> list[QueryFrame]:
    return [QueryFrame(t, t + 1) for t in times]


def match(video: int, time: float, score: float = 0.8) -> Match:
    record = {
        "video": video,
        "video_name": f"v{video}",
        "time": time,
        "until": time + 1,
        "duration": 100.0,
    }
    return Match(int(time * 10), score, record)


def test_a_compilation_of_two_pieces_gives_two_aligned_segments() -> None:
    """Query seconds 0-9 are video 1 at 40-49, seconds 10-19 are video 1 at 5-14; every
    query frame also matches the stored frames around the right one and a stray frame."""
    query = frames([float(t) for t in range(20)])
    matches = []
    for t in range(20):
        right = 40 + t if t < 10 else t - 5
        found = [match(1, right, 0.85), match(1, right + 1, 0.75), match(1, right - 1, 0.74)]
        found.append(match(2, (7 * t) % 30, 0.7))  # another video, no steady offset
        matches.append(found)
    [copy] = find_copies(query, matches, interval=1.0, min_score=0.6, top_videos=10)
    first, second = copy.segments
    found = [(s.query_start, s.query_end, s.start, s.end) for s in (first, second)]
    assert found == [
        pytest.approx((0, 10, 40, 50), abs=0.1),
        pytest.approx((10, 20, 5, 15), abs=0.1),
    ]
    assert copy.seconds == 20


def test_isolated_matches_are_not_a_copy() -> None:
    query = frames([float(t) for t in range(20)])
    matches = [[match(1, 50.0)] if t in (3, 9, 15) else [] for t in range(20)]
    assert find_copies(query, matches, interval=1.0, min_score=0.6, top_videos=10) == []
