"""What the video app refuses, on both backend pairs: each a clear error with the right
status, nothing stored, and the server still serving."""

import hashlib
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from common.collection import content_id
from solutions.video_analysis.tests.fixtures import SampleVideos
from tests.helpers import snapshot, wait_for_job
from tests.imagery import encoded, photos

# Refused when the load is asked for: the file is opened and one frame decoded at once.
AT_ONCE = {
    "zip": "not a video file",
    "text": "not a video file",
    "empty": "not a video file",
    "truncated": "not a video file",
    "garbled": "not a video file",
    "audio": "no video stream in the file (only audio streams)",
    "huge": "frames of 7680x4320 are over the limit of 2,073,600 pixels",
    "long": "150 s of video is over the limit of 120 s",
    "no_frames": "not a video file",
    "bomb": "frames of 12000x12000 are over the limit of 2,073,600 pixels",
    "still": "a still picture (png), not a video",
}


@pytest.mark.parametrize("kind", sorted(AT_ONCE))
def test_a_file_that_is_not_a_usable_video_is_refused_at_once(
    shared_video: TestClient, test_videos: SampleVideos, kind: str
) -> None:
    before = snapshot(shared_video)
    path = test_videos.bad[kind]
    response = shared_video.post(
        "/collections/bad/loads", files={"file": (path.name, path.read_bytes())}
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input" and AT_ONCE[kind] in error["message"], error
    assert path.name in error["message"]
    assert snapshot(shared_video) == before
    assert shared_video.get("/health/ready").status_code == 200


# Refused by the load's job: the file opens and its first frames decode, the rest do not.
IN_THE_JOB = {
    "cut": "of the 12.0 s the file declares",
    "no_time_base": "frames end at 0.0 s of the 30.0 s the file declares",
    "zero_durations": "of the 30.0 s the file declares",
}


@pytest.mark.parametrize("kind", sorted(IN_THE_JOB))
def test_a_video_damaged_past_its_first_frames_fails_in_its_job(
    shared_video: TestClient, test_videos: SampleVideos, kind: str
) -> None:
    path = test_videos.bad[kind]
    before = snapshot(shared_video)
    response = shared_video.post(
        "/collections/cut/loads", files={"file": (path.name, path.read_bytes())}
    )
    assert response.status_code == 202, response.text
    job = wait_for_job(shared_video, response.json()["id"])
    assert job["status"] == "succeeded" and (job["added"], job["failed"]) == (0, 1), job
    [error] = job["errors"]
    assert error["item"] == path.name and "truncated or damaged" in error["reason"], error
    assert IN_THE_JOB[kind] in error["reason"]
    # Progress counts the video whole: the bar ends full.
    assert job["progress"]["seconds"] == job["progress"]["seconds_total"] > 0
    assert shared_video.get("/collections/cut/videos").json()["videos"] == []
    assert snapshot(shared_video).get("cut", []) == before.get("cut", [])
    assert shared_video.get("/health/ready").status_code == 200


def test_a_folder_loads_its_good_videos_and_lists_the_others(
    shared_video: TestClient, test_videos: SampleVideos, tmp_path: Path
) -> None:
    files = [
        ("file", (name, path.read_bytes()))
        for name, path in [
            ("short.mp4", test_videos.short),
            ("notes.mp4", test_videos.bad["text"]),
            ("song.mp4", test_videos.bad["audio"]),
        ]
    ]
    response = shared_video.post("/collections/mixed/loads", files=files)
    assert response.status_code == 202, response.text
    job = wait_for_job(shared_video, response.json()["id"])
    assert (job["added"], job["failed"]) == (1, 2), job
    reasons = {e["item"]: e["reason"] for e in job["errors"]}
    assert "not a video file" in reasons["notes.mp4"]
    assert "no video stream" in reasons["song.mp4"]


def test_a_file_type_that_is_no_video_is_refused_by_its_name(shared_video: TestClient) -> None:
    response = shared_video.post("/collections/bad/loads", files={"file": ("notes.txt", b"hi")})
    assert response.status_code == 415
    assert ".mp4" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("data", "status"),
    [(b"not a picture", 415), (b"", 422), (encoded(photos()["coffee"])[:300], 422)],
    ids=["text", "empty", "truncated"],
)
def test_a_bad_query_picture_is_refused(
    shared_video: TestClient, test_videos: SampleVideos, data: bytes, status: int
) -> None:
    path = test_videos.short
    job = shared_video.post(
        "/collections/query/loads", files={"file": (path.name, path.read_bytes())}
    )
    wait_for_job(shared_video, job.json()["id"])
    response = shared_video.post(
        "/collections/query/moments/by-image", files={"file": ("q.png", data)}
    )
    assert response.status_code == status, response.text
    assert shared_video.get("/collections/query/videos").status_code == 200


@pytest.mark.parametrize(
    "form", [{"top_k": "0"}, {"top_k": "101"}, {"min_score": "2"}, {"min_score": "x"}]
)
def test_bad_search_fields_are_422(shared_video: TestClient, form: dict[str, str]) -> None:
    files = {"file": ("q.png", encoded(photos()["coffee"]))}
    response = shared_video.post("/collections/query/moments/by-image", files=files, data=form)
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "path",
    [
        "/collections/nope/videos",
        "/collections/nope/moments/by-words?q=cat",
        "/collections/query/videos/12345",
        "/collections/query/items/12345/original",
    ],
)
def test_unknown_collections_and_videos_are_404(shared_video: TestClient, path: str) -> None:
    assert shared_video.get(path).status_code == 404


@pytest.mark.parametrize("video_id", ["-1", "9223372036854775808", "abc"])
def test_bad_video_ids_are_422(shared_video: TestClient, video_id: str) -> None:
    assert shared_video.get(f"/collections/query/videos/{video_id}").status_code == 422


@pytest.mark.parametrize(
    "options",
    [
        {"frame_interval": 0},
        {"frame_interval": 61},
        {"tags": "maybe"},
        {"faces": "sometimes"},
        {"voices": True},
    ],
)
def test_bad_collection_options_are_422(shared_video: TestClient, options: object) -> None:
    response = shared_video.post("/collections", json={"name": "opts", "options": options})
    assert response.status_code == 422, response.text


def test_deleting_a_video_while_its_load_runs(
    shared_video: TestClient, test_videos: SampleVideos
) -> None:
    """The video is stored whole at the end of its load: before that it does not exist
    (404), and the load still completes."""
    data = test_videos.clip.read_bytes()
    video_id = content_id(hashlib.sha256(data).hexdigest())
    response = shared_video.post("/collections/racing/loads", files={"file": ("clip.mp4", data)})
    answers: list[int] = []
    stop = threading.Event()

    def keep_deleting() -> None:
        while not stop.is_set():
            answers.append(
                shared_video.delete(f"/collections/racing/videos/{video_id}").status_code
            )

    deleter = threading.Thread(target=keep_deleting)
    deleter.start()
    try:
        job = wait_for_job(shared_video, response.json()["id"])
    finally:
        stop.set()
        deleter.join()
    assert job["status"] == "succeeded" and job["added"] == 1, job
    assert answers and set(answers) <= {404, 200}, set(answers)
    stored = shared_video.get("/collections/racing/videos").json()["videos"]
    if answers[-1] == 200:  # the last delete came after the video was stored
        assert stored == []
    snapshot(shared_video)
