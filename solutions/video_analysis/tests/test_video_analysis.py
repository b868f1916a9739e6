"""The video app end to end, on both backend pairs: loads, shots, moments, media, deletes."""

from pathlib import Path
from typing import Any

import av
import pytest
from fastapi.testclient import TestClient

from solutions.video_analysis.tests.fixtures import TITLE, SampleVideos, pictures, truth
from tests.helpers import snapshot, wait_for_job
from tests.imagery import encoded, photos

TRUTH = truth()
# The sampling interval: a moment or a cut is placed to within one sampled frame.
TOLERANCE = 1.0


def load(client: TestClient, *paths: Path, collection: str = "clips") -> dict[str, Any]:
    files = [("file", (path.name, path.read_bytes(), "application/octet-stream")) for path in paths]
    response = client.post(f"/collections/{collection}/loads", files=files)
    assert response.status_code == 202, response.text
    return wait_for_job(client, response.json()["id"], timeout=300)


def video_named(client: TestClient, name: str, collection: str = "clips") -> dict[str, Any]:
    videos = client.get(f"/collections/{collection}/videos").json()["videos"]
    return next(video for video in videos if video["name"] == name)


def by_image(client: TestClient, picture: Any, **form: Any) -> list[dict[str, Any]]:
    files = {"file": ("query.png", encoded(picture), "image/png")}
    response = client.post("/collections/clips/moments/by-image", files=files, data=form)
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


@pytest.fixture(scope="module")
def loaded(shared_video: TestClient, test_videos: SampleVideos) -> TestClient:
    job = load(shared_video, test_videos.clip, test_videos.short)
    assert job["status"] == "succeeded" and job["added"] == 2 and job["failed"] == 0, job
    shared_video.app.state.loaded_job = job  # type: ignore[attr-defined]
    return shared_video


def test_load_reports_seconds_of_video_and_stage_timings(loaded: TestClient) -> None:
    job = loaded.app.state.loaded_job  # type: ignore[attr-defined]
    assert job["progress"]["seconds"] == pytest.approx(TRUTH.duration + 6, abs=0.1)
    assert job["progress"]["seconds_total"] == pytest.approx(job["progress"]["seconds"])
    assert {"decode", "shots", "encode", "tags", "ocr", "store"} <= set(job["timings"])
    assert job["total"] == 2 and job["done"] == 2


def test_storyboard_has_the_shots_at_their_cuts(loaded: TestClient) -> None:
    video = video_named(loaded, "clip.mp4")
    assert video["duration"] == pytest.approx(TRUTH.duration, abs=0.1)
    assert (video["width"], video["height"], video["codec"]) == (640, 360, "h264")
    board = loaded.get(f"/collections/clips/videos/{video['id']}").json()
    starts = [shot["start"] for shot in board["shots"]]
    assert len(starts) == len(TRUTH.cuts)
    for found, cut in zip(starts, TRUTH.cuts, strict=True):
        assert abs(found - cut) <= TOLERANCE
    assert board["shots"][-1]["end"] == pytest.approx(TRUTH.duration, abs=0.1)
    coffee = board["shots"][2]
    assert "espresso" in coffee["tags"]
    thumbnail = loaded.get(coffee["thumbnail_url"])
    assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee", "rocket", "horse"])
def test_a_picture_finds_its_moment(loaded: TestClient, name: str) -> None:
    results = by_image(loaded, pictures()[name])
    assert results and results[0]["video"]["name"] == "clip.mp4"
    start, end = TRUTH.spans[name]
    best = max(results[0]["moments"], key=lambda m: m["score"])
    assert abs(best["start"] - start) <= TOLERANCE and abs(best["end"] - end) <= TOLERANCE, best
    assert start - TOLERANCE <= best["time"] <= end
    assert loaded.get(best["thumbnail_url"]).status_code == 200


def test_a_picture_in_no_video_finds_no_moment(loaded: TestClient) -> None:
    assert by_image(loaded, photos()["retina"]) == []
    # Asked for any similarity at all, it still ranks videos by their best frame.
    assert len(by_image(loaded, photos()["retina"], min_score=-1)) == 2


def test_an_altered_picture_still_finds_its_moment(loaded: TestClient) -> None:
    picture = pictures()["rocket"]
    cropped = picture.crop((40, 30, picture.width - 40, picture.height - 30)).resize((300, 200))
    results = by_image(loaded, cropped, min_score=0.6)
    best = max(results[0]["moments"], key=lambda m: m["score"])
    assert abs(best["start"] - TRUTH.spans["rocket"][0]) <= TOLERANCE


def test_words_find_the_shot_with_those_labels(loaded: TestClient) -> None:
    response = loaded.get("/collections/clips/moments/by-words", params={"q": "Espresso!"})
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[0]["video"]["name"] == "clip.mp4"
    moment = results[0]["moments"][0]
    assert (moment["start"], moment["end"]) == pytest.approx(TRUTH.spans["coffee"], abs=TOLERANCE)
    marked = [span["text"] for span in moment["tags"] if span["match"]]
    assert marked == ["espresso"]


@pytest.mark.parametrize("query", ['"espresso" OR *', "espresso -cat", "NEAR(espresso", "a'b"])
def test_search_operators_are_plain_words(loaded: TestClient, query: str) -> None:
    response = loaded.get("/collections/clips/moments/by-words", params={"q": query})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("query", ["", "?!", "x" * 501])
def test_a_query_without_words_is_refused(loaded: TestClient, query: str) -> None:
    response = loaded.get("/collections/clips/moments/by-words", params={"q": query})
    assert response.status_code == 422


def test_the_player_seeks_with_range_requests(
    loaded: TestClient, test_videos: SampleVideos
) -> None:
    video = video_named(loaded, "clip.mp4")
    assert video["player_url"].endswith(f"/items/{video['id']}/original")
    size = test_videos.clip.stat().st_size
    part = loaded.get(video["player_url"], headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.headers["content-range"] == f"bytes 1000-1999/{size}"
    assert part.content == test_videos.clip.read_bytes()[1000:2000]
    assert part.headers["content-type"] == "video/mp4"
    assert loaded.head(video["player_url"]).status_code == 200
    # A video that plays as it is has no copy.
    assert loaded.get(video["player_url"].replace("/original", "/playable")).status_code == 404


def test_loading_the_same_video_again_adds_nothing(
    loaded: TestClient, test_videos: SampleVideos
) -> None:
    before = snapshot(loaded)
    job = load(loaded, test_videos.clip)
    assert job["status"] == "succeeded" and (job["added"], job["duplicates"]) == (0, 1)
    assert snapshot(loaded) == before


def test_a_video_browsers_cannot_play_gets_a_playable_copy(
    shared_video: TestClient, test_videos: SampleVideos, tmp_path: Path
) -> None:
    job = load(shared_video, test_videos.avi, collection="old")
    assert job["status"] == "succeeded" and job["added"] == 1, job
    video = video_named(shared_video, "old.avi", collection="old")
    assert video["media_type"] == "video/x-msvideo" and video["codec"] == "mpeg4"
    assert video["player_url"].endswith("/playable")
    copy = shared_video.get(video["player_url"])
    assert copy.status_code == 200 and copy.headers["content-type"] == "video/mp4"
    (tmp_path / "copy.mp4").write_bytes(copy.content)
    with av.open(str(tmp_path / "copy.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = sum(1 for _ in container.decode(stream))
    assert frames == pytest.approx(6 * 25, abs=2)
    original = shared_video.get(video["player_url"].replace("/playable", "/original"))
    assert original.content == test_videos.avi.read_bytes()
    # Made for the web: its index before its frames, so a player starts before it has all.
    assert _top_level_boxes(copy.content)[:2] == ["ftyp", "moov"]
    # Safari's first request is for two bytes; then it asks for the rest from where it seeks.
    size = len(copy.content)
    probe = shared_video.get(video["player_url"], headers={"Range": "bytes=0-1"})
    assert probe.status_code == 206 and probe.content == copy.content[:2]
    assert probe.headers["content-range"] == f"bytes 0-1/{size}"
    assert probe.headers["accept-ranges"] == "bytes" and probe.headers["content-length"] == "2"
    rest = shared_video.get(video["player_url"], headers={"Range": f"bytes={size // 2}-"})
    assert rest.status_code == 206 and rest.content == copy.content[size // 2 :]
    assert rest.headers["content-range"] == f"bytes {size // 2}-{size - 1}/{size}"
    beyond = shared_video.get(video["player_url"], headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416


def _top_level_boxes(mp4: bytes) -> list[str]:
    boxes, offset = [], 0
    while offset + 8 <= len(mp4):
        size = int.from_bytes(mp4[offset : offset + 4], "big")
        boxes.append(mp4[offset + 4 : offset + 8].decode("latin-1"))
        if size < 8:
            break
        offset += size
    return boxes


def test_the_playable_copy_keeps_the_sound(
    shared_video: TestClient, test_videos: SampleVideos, tmp_path: Path
) -> None:
    job = load(shared_video, test_videos.with_sound, collection="sound")
    assert job["status"] == "succeeded" and job["added"] == 1, job
    video = video_named(shared_video, "sound.avi", collection="sound")
    copy = shared_video.get(video["player_url"])
    assert video["player_url"].endswith("/playable") and copy.status_code == 200
    (tmp_path / "copy.mp4").write_bytes(copy.content)
    with av.open(str(tmp_path / "copy.mp4")) as container:
        [picture], [sound] = container.streams.video, container.streams.audio
        assert (picture.codec_context.name, sound.codec_context.name) == ("h264", "aac")
        samples = sum(frame.samples for frame in container.decode(sound))
    assert samples / sound.rate == pytest.approx(3.0, abs=0.1)


def test_a_rotated_phone_video_is_stored_upright(
    shared_video: TestClient, test_videos: SampleVideos
) -> None:
    job = load(shared_video, test_videos.rotated, collection="phone")
    assert job["status"] == "succeeded", job
    video = video_named(shared_video, "phone.mp4", collection="phone")
    assert (video["width"], video["height"]) == (320, 180)
    files = {"file": ("q.png", encoded(photos()["chelsea"]), "image/png")}
    upright = shared_video.post("/collections/phone/moments/by-image", files=files).json()
    assert upright["results"][0]["score"] > 0.9


def test_a_variable_frame_rate_video_keeps_its_times(
    shared_video: TestClient, test_videos: SampleVideos
) -> None:
    job = load(shared_video, test_videos.variable_rate, collection="vfr")
    assert job["status"] == "succeeded", job
    video = video_named(shared_video, "vfr.mkv", collection="vfr")
    board = shared_video.get(f"/collections/vfr/videos/{video['id']}").json()
    assert [round(shot["start"]) for shot in board["shots"]] == [0, 4]
    assert board["shots"][-1]["end"] == pytest.approx(8.0, abs=0.2)


def test_a_raw_stream_without_timestamps_is_timed_by_its_frame_rate(
    shared_video: TestClient, test_videos: SampleVideos
) -> None:
    job = load(shared_video, test_videos.no_timestamps, collection="raw")
    assert job["status"] == "succeeded" and job["added"] == 1, job
    video = video_named(shared_video, "raw.mp4", collection="raw")
    assert (video["duration"], video["fps"]) == (pytest.approx(3.0, abs=0.05), 25.0)
    # No duration in the file: its seconds join the total as they are read.
    progress = job["progress"]
    assert progress["seconds_total"] == progress["seconds"] == pytest.approx(video["duration"])
    assert shared_video.get("/collections/raw").json()["count"] == 3  # at 0, 1 and 2 s
    # Named .mp4 but no MP4 inside: browsers get the H.264 MP4 copy.
    assert video["player_url"].endswith("/playable")
    assert shared_video.get(video["player_url"]).status_code == 200


def test_a_video_with_a_hundred_streams_is_read_by_its_video_stream(
    shared_video: TestClient, test_videos: SampleVideos
) -> None:
    job = load(shared_video, test_videos.many_streams, collection="streams")
    assert job["status"] == "succeeded" and job["added"] == 1, job


def test_deleting_a_video_removes_it_everywhere(
    shared_video: TestClient, test_videos: SampleVideos
) -> None:
    assert load(shared_video, test_videos.short, collection="gone")["added"] == 1
    video = video_named(shared_video, "short.mp4", collection="gone")
    deleted = shared_video.delete(f"/collections/gone/videos/{video['id']}")
    assert deleted.status_code == 200 and deleted.json()["frames"] >= 6
    assert shared_video.get(f"/collections/gone/videos/{video['id']}").status_code == 404
    assert shared_video.get(video["player_url"]).status_code == 404
    assert shared_video.get(video["poster_url"]).status_code == 404
    assert shared_video.get("/collections/gone/videos").json()["videos"] == []
    assert snapshot(shared_video)["gone"] == []
    assert shared_video.delete(f"/collections/gone/videos/{video['id']}").status_code == 404


def test_on_screen_text_finds_its_shot(loaded: TestClient) -> None:
    video = video_named(loaded, "clip.mp4")
    board = loaded.get(f"/collections/clips/videos/{video['id']}").json()
    texts = {shot["start"]: shot["text"] for shot in board["shots"]}
    assert texts[TRUTH.spans["title"][0]] == TITLE
    assert all(text == "" for start, text in texts.items() if start != TRUTH.spans["title"][0])
    response = loaded.get("/collections/clips/moments/by-words", params={"q": "quarterly 2026"})
    [result] = response.json()["results"]
    [moment] = result["moments"]
    assert (moment["start"], moment["end"]) == pytest.approx(TRUTH.spans["title"], abs=TOLERANCE)
    marked = [span["text"] for span in moment["text"] if span["match"]]
    assert marked == ["QUARTERLY", "2026"]


def test_a_collection_may_leave_out_text_and_labels(
    shared_video: TestClient, test_videos: SampleVideos
) -> None:
    options = {"ocr": False, "tags": False, "faces": False, "frame_interval": 2.0}
    created = shared_video.post("/collections", json={"name": "plain", "options": options})
    assert created.status_code == 201 and created.json()["options"] == options
    job = load(shared_video, test_videos.clip, collection="plain")
    assert not {"ocr", "tags", "faces"} & set(job["timings"]), job["timings"]
    video = video_named(shared_video, "clip.mp4", collection="plain")
    board = shared_video.get(f"/collections/plain/videos/{video['id']}").json()
    assert len(board["shots"]) == len(TRUTH.cuts)
    assert all(shot["text"] == shot["tags"] == "" for shot in board["shots"])
    words = shared_video.get("/collections/plain/moments/by-words", params={"q": "quarterly"})
    assert words.json()["results"] == []
    # A frame every 2 s from each cut (0 2 4, 5 7 9, 10 12, 14 16 18, 20 22, 24 26 28):
    # fewer frames, the same moments.
    assert shared_video.get("/collections/plain").json()["count"] == 16
    files = {"file": ("q.png", encoded(pictures()["rocket"]), "image/png")}
    found = shared_video.post("/collections/plain/moments/by-image", files=files).json()
    best = max(found["results"][0]["moments"], key=lambda m: m["score"])
    assert (best["start"], best["end"]) == pytest.approx(TRUTH.spans["rocket"], abs=TOLERANCE)
