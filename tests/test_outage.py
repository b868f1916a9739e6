"""A backend going away mid-run: 503 with the error shape, and the app keeps serving."""

import time
from pathlib import Path

from fastapi.testclient import TestClient

from common.app import create_app
from common.solution import Solution
from solutions.qa_chatbot.settings import QASettings
from tests.backends import MilvusServer, MySQLBackend
from tests.helpers import error_of


def test_sql_and_milvus_outages_give_503_and_the_app_keeps_serving(
    own_mysql: MySQLBackend,
    own_milvus: MilvusServer,
    qa_solution: Solution[QASettings],
    tmp_path: Path,
) -> None:
    settings = QASettings(
        milvus_uri=own_milvus.uri,
        sql_url=own_mysql.url,
        upload_dir=tmp_path / "uploads",
        load_sample_data=False,
    )
    with TestClient(create_app(qa_solution, settings)) as client:
        pair = {"question": "Is the database up?", "answer": "For now."}
        assert client.post("/collections/faq/items", json=pair).status_code == 201
        assert client.post("/collections/faq/ask", json={"question": "db up?"}).json()["answered"]

        assert own_mysql._server is not None
        own_mysql._server.stop()  # the SQL server dies
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["sql"].startswith("unavailable") and ready.json()["status"] != "ready"
        asked = client.post("/collections/faq/ask", json={"question": "db up?"})
        assert asked.status_code == 503, asked.text
        assert error_of(asked)["code"] == "backend_unavailable"
        assert client.get("/health/live").status_code == 200

        own_milvus.stop()  # and now Milvus too
        ready = client.get("/health/ready")
        assert ready.status_code == 503 and ready.json()["milvus"].startswith("unavailable")
        start = time.monotonic()
        asked = client.post("/collections/faq/ask", json={"question": "db up?"})
        print("ask with Milvus down took", time.monotonic() - start)
        assert asked.status_code == 503, asked.text
        assert error_of(asked)["code"] == "backend_unavailable"
        assert client.get("/health/live").status_code == 200
