"""A load killed in the middle of a video leaves that video complete or absent, on both pairs.

The load runs in a child process that dies (``os._exit``) while storing the frames of the
2nd of three videos (after its faces were stored): right after its frames reached Milvus,
inside the transaction that makes them ready, or just before the Milvus insert. After a
restart the first video is whole, the others are absent from both stores and from the
media folder, their faces too, and loading again completes the set without duplicates.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from common.app import create_app
from common.jobs import JobStore
from solutions.video_analysis.app import SOLUTION
from solutions.video_analysis.indexing import FrameEncoder
from solutions.video_analysis.tests.fixtures import SampleVideos, video_settings
from tests.fixtures import Backend
from tests.helpers import snapshot, wait_for_job, with_encoder

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("mode", ["after-milvus", "before-index", "before-milvus"])
def test_a_video_is_stored_whole_or_not_at_all(
    mode: str,
    backend: Backend,
    tmp_path: Path,
    test_videos: SampleVideos,
    frame_encoder: FrameEncoder,
) -> None:
    folder = tmp_path / "imports" / "three"
    folder.mkdir(parents=True)
    # A folder is read in name order: the clip is the 2nd video.
    videos = (test_videos.short, test_videos.clip, test_videos.avi)
    for prefix, video in zip("abc", videos, strict=True):
        shutil.copy(video, folder / f"{prefix}-{video.name}")
    # A short lease: on the server pair the restarted app takes the dead process's job over
    # once its lease expires (on SQLite, alone, at once).
    settings = video_settings(backend, tmp_path, lease_s=1)
    env = {
        **os.environ,
        "SEARCH_MILVUS_URI": settings.milvus_uri,
        "SEARCH_SQL_URL": settings.sql_url,
        "SEARCH_MEDIA_DIR": str(settings.media_dir),
        "SEARCH_UPLOAD_DIR": str(settings.upload_dir),
        "SEARCH_VIDEO_MODEL_DIR": str(frame_encoder.images.cache_dir),
        "SEARCH_VIDEO_MAX_SECONDS": str(settings.video_max_seconds),
        "SEARCH_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "tests.crash_load", str(folder), mode]
    command += ["solutions.video_analysis.app", "2", "video__crash"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=300)
    assert done.returncode == 137, done.stdout.decode() + done.stderr.decode()
    # Cancelled while its worker is dead: the restart ends it instead of running it again
    # (tests/test_consistency.py covers the takeover), so what recovery left can be seen.
    job_id = re.search(r"job (\w+)", done.stdout.decode())[1]  # type: ignore[index]
    engine = create_engine(settings.sql_url)
    JobStore(engine, SOLUTION.namespace).request_cancel(job_id)
    engine.dispose()

    solution = with_encoder(SOLUTION, frame_encoder)
    with TestClient(create_app(solution, settings)) as client:  # the restart: recovery runs
        assert wait_for_job(client, job_id, timeout=30)["status"] == "cancelled"
        state = snapshot(client)  # Milvus ids == SQL ids == full-text index ids
        videos = client.get("/collections/crash/videos").json()["videos"]
        assert [v["name"] for v in videos] == ["a-short.mp4"]
        board = client.get(f"/collections/crash/videos/{videos[0]['id']}").json()
        assert len(board["shots"]) == 2
        assert len(state["crash"]) == client.get("/collections/crash").json()["count"]
        folder = settings.media_dir / "video__crash"
        media = {p.name.split(".")[0] for p in folder.rglob("*") if p.is_file()}
        assert media == {str(i) for i in state["crash"]}  # no file of a video not stored
        # The clip's faces were stored before the crash; the restart removed them.
        faces = client.app.state.context.collections.get("crash").companion("faces")  # type: ignore[attr-defined]
        assert {int(v) for _, v in faces.scan(["video"])} <= {int(videos[0]["id"])}
        face_files = {
            p.name.split(".")[0]
            for p in (settings.media_dir / "video_faces__crash").rglob("*")
            if p.is_file()
        }
        assert face_files == {str(i) for i, _ in faces.scan(["video"])}

        job = client.post("/collections/crash/loads/path", json={"path": "three"})
        finished = wait_for_job(client, job.json()["id"], timeout=300)
        assert finished["status"] == "succeeded", finished
        assert (finished["added"], finished["duplicates"]) == (2, 1), finished
        snapshot(client)
        names = [v["name"] for v in client.get("/collections/crash/videos").json()["videos"]]
        assert sorted(names) == ["a-short.mp4", "b-clip.mp4", "c-old.avi"]
        clip = next(
            v
            for v in client.get("/collections/crash/videos").json()["videos"]
            if v["name"] == "b-clip.mp4"
        )
        assert (
            len(client.get(f"/collections/crash/videos/{clip['id']}/people").json()["unknown"]) == 1
        )
