"""Kill a load between the two writes, restart, and prove both stores hold the same ids."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select

from common.app import create_app
from common.tables import jobs_table
from solutions.qa_chatbot.settings import QASettings
from solutions.qa_chatbot.tests.fixtures import generated_pairs, write_csv
from tests.helpers import snapshot, wait_for_job

ROOT = Path(__file__).resolve().parents[1]
PAIRS = 200


def crash_env(settings: QASettings) -> dict[str, str]:
    return {
        **os.environ,
        "SEARCH_MILVUS_URI": settings.milvus_uri,
        "SEARCH_SQL_URL": settings.sql_url,
        "SEARCH_UPLOAD_DIR": str(settings.upload_dir),
        "SEARCH_LOG_LEVEL": "WARNING",
    }


def done_so_far(sql_url: str) -> int:
    engine = create_engine(sql_url)
    try:
        with engine.connect() as connection:
            return max(connection.scalars(select(jobs_table.c.done)), default=0)
    except Exception:
        return 0
    finally:
        engine.dispose()


@pytest.mark.parametrize("mode", ["after-milvus", "before-index", "before-milvus", "sigkill"])
def test_killed_load_recovers_and_reruns_without_duplicates(
    mode: str, settings: QASettings, qa_solution, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    source = write_csv(tmp_path / "pairs.csv", generated_pairs(PAIRS, seed=21))
    command = [
        sys.executable,
        "-m",
        "tests.crash_load",
        str(source),
        "slow" if mode == "sigkill" else mode,
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, env=crash_env(settings), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    if mode == "sigkill":
        deadline = time.monotonic() + 120
        while done_so_far(settings.sql_url) < 40 and time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read().decode()  # type: ignore[union-attr]
            time.sleep(0.02)
        process.kill()
    output, _ = process.communicate(timeout=180)
    assert process.returncode in {137, -9}, output.decode()

    with TestClient(create_app(qa_solution, settings)) as client:  # the restart: recovery runs
        # The restarted app takes the dead process's job over and runs it again from the
        # start: what the dead run stored completely counts as duplicates, the rest is added.
        (job,) = client.get("/jobs").json()
        job = wait_for_job(client, job["id"])
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 2, job
        events = [event["event"] for event in job["history"]]
        assert events == ["started", "requeued", "started"], job["history"]
        assert job["added"] + job["duplicates"] == PAIRS and job["added"] > 0, job
        if mode != "sigkill":
            assert job["duplicates"] == 32, job  # the two batches of 16 that completed
        state = snapshot(client)  # asserts Milvus ids == SQL ids, no duplicate entities
        assert len(state["crash"]) == PAIRS
        assert client.get("/collections/crash").json()["count"] == PAIRS

        with source.open("rb") as file:
            again = client.post("/collections/crash/loads", files={"file": ("pairs.csv", file)})
        again = wait_for_job(client, again.json()["id"])
        assert (again["added"], again["duplicates"]) == (0, PAIRS), again
        assert len(snapshot(client)["crash"]) == PAIRS
