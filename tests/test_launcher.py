"""One process serves every installed app, each under its own prefix with its own docs."""

from pathlib import Path

from fastapi.testclient import TestClient

from common.launcher import create_site, installed
from common.settings import Settings
from solutions import APPS
from tests.helpers import error_of, use_embedded_storage, wait_for_job, with_encoders
from tests.imagery import encoded, photos


def test_one_process_serves_every_app(
    tmp_path: Path, monkeypatch, qa_encoders, efficientnet, frame_encoder
) -> None:  # type: ignore[no-untyped-def]
    use_embedded_storage(monkeypatch, tmp_path, load_sample=True)
    solutions = list(installed(APPS))
    assert [s.namespace for s in solutions] == ["qa", "images", "molecules", "video"]
    encoders = {"qa": qa_encoders, "images": efficientnet, "video": frame_encoder}
    solutions = with_encoders(solutions, encoders)
    with TestClient(create_site(solutions, Settings())) as site:
        links = site.get("/apps").json()
        docs = ["qa/docs", "images/docs", "molecules/docs", "video/docs"]
        assert [link["docs"] for link in links] == docs
        front = site.get("/")  # the front-end, with a page per app
        assert "text/html" in front.headers["content-type"] and 'src="ui/app.js"' in front.text
        assert site.get("/ui/app.js").headers["content-type"].startswith("text/javascript")
        for link in links:
            assert "text/html" in site.get(f"/{link['docs']}").headers["content-type"]
            assert "text/html" in site.get(f"/{link['redoc']}").headers["content-type"]
            spec = site.get(f"/{link['name']}/openapi.json").json()
            assert spec["info"]["title"] == link["title"]
            operations = [
                op["operationId"] for path in spec["paths"].values() for op in path.values()
            ]
            assert len(operations) == len(set(operations)), operations
        for path in ("/nope", "/qa/jobs/abc%0A/events", "/images/%0A"):  # under no app
            missing = site.get(path)
            assert missing.status_code == 404, path
            assert error_of(missing)["code"] == "not_found"
            assert missing.headers["x-request-id"] == error_of(missing)["request_id"]
        inside = site.get("/qa/jobs/nope", headers={"x-request-id": "mine-1"})  # in an app
        assert inside.status_code == 404 and error_of(inside)["request_id"] == "mine-1"
        assert inside.headers.get_list("x-request-id") == ["mine-1"]  # given once, not twice
        for prefix in ("qa", "images", "molecules", "video"):  # samples load on first start
            job = site.get(f"/{prefix}/jobs").json()[0]
            finished = wait_for_job(site, job["id"], prefix=f"/{prefix}", timeout=300)
            assert finished["status"] == "succeeded" and finished["failed"] == 0, finished
        answer = site.post("/qa/collections/faq/ask", json={"question": "what does nprobe do?"})
        assert answer.json()["answered"]
        found = site.post(
            "/images/collections/photos/search",
            files={"file": ("q.png", encoded(photos()["coffee"]))},
        ).json()
        top = found["results"][0]
        assert top["filename"].endswith("coffee.jpg")
        assert top["thumbnail_url"].startswith("http://testserver/images/collections/photos/")
        assert site.get(top["thumbnail_url"]).status_code == 200
        head = site.head(top["thumbnail_url"])
        assert head.status_code == 200 and head.headers["content-type"] == "image/jpeg"
        aspirin = {"smiles": "CC(=O)Oc1ccccc1C(=O)O"}
        found = site.post("/molecules/collections/drugs/similar", json=aspirin).json()
        assert found["results"][0]["name"] == "Aspirin"
        videos = site.get("/video/collections/clips/videos").json()["videos"]
        assert videos and all(
            v["player_url"].startswith("http://testserver/video/") for v in videos
        )
        for prefix in ("qa", "images", "molecules", "video"):  # each app links to its own jobs
            response = site.post(f"/{prefix}/collections/sample_again/loads/sample")
            assert response.headers["location"].startswith(f"http://testserver/{prefix}/jobs/")
        assert site.get("/qa/health/ready").json()["status"] == "ready"


def test_apps_whose_dependencies_are_missing_are_skipped() -> None:
    assert list(installed(("solutions.qa_chatbot.app", "no_such_package.app"))) == [
        next(iter(installed(("solutions.qa_chatbot.app",))))
    ]
