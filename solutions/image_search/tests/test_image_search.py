"""Reverse image search end to end over HTTP, on both backend pairs."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.helpers import assert_documented, snapshot, wait_for_job
from tests.imagery import ALTERATIONS, altered, encoded, photos, zip_of


@pytest.fixture(scope="module")
def loaded(
    shared_images: TestClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """The photos loaded as one zip (a folder per kind) through a job; name -> id."""
    pictures = photos()
    members = {f"{folder_of(name)}/{name}.png": encoded(p) for name, p in pictures.items()}
    archive = zip_of(tmp_path_factory.mktemp("zip") / "photos.zip", members)
    with archive.open("rb") as file:
        response = shared_images.post(
            "/collections/photos/loads", files=[("file", ("photos.zip", file, "application/zip"))]
        )
    assert response.status_code == 202, response.text
    job = wait_for_job(shared_images, response.json()["id"])
    assert job["status"] == "succeeded" and job["added"] == job["total"] == len(pictures), job
    items = shared_images.get("/collections/photos/items", params={"limit": 100}).json()
    ids = {item["filename"].rsplit("/", 1)[-1][:-4]: item["id"] for item in items}
    assert set(ids) == set(pictures)
    yield shared_images, ids


def folder_of(name: str) -> str:
    return "early" if name < "d" else "late"


def search(client: TestClient, data: bytes, top_k: int = 5, **form: str) -> list[dict]:
    response = client.post(
        "/collections/photos/search",
        data={"top_k": str(top_k), **form},
        files={"file": ("query.jpg", data, "image/jpeg")},
    )
    assert response.status_code == 200, response.text
    return response.json()["results"]


@pytest.mark.parametrize("how", ALTERATIONS)
def test_each_altered_photo_finds_its_original_first(loaded, how: str) -> None:  # type: ignore[no-untyped-def]
    client, ids = loaded
    for seed, (name, picture) in enumerate(photos().items()):
        results = search(client, encoded(altered(picture, how, seed), "JPEG", quality=90))
        assert results[0]["id"] == ids[name], (how, name, results[:2])
        assert results[0]["score"] > results[1]["score"]


def test_more_like_this_excludes_the_item(loaded) -> None:  # type: ignore[no-untyped-def]
    client, ids = loaded
    response = client.get(f"/collections/photos/items/{ids['coffee']}/similar", params={"top_k": 5})
    results = response.json()["results"]
    assert len(results) == 5 and ids["coffee"] not in {r["id"] for r in results}
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    everything = client.get(
        f"/collections/photos/items/{ids['coffee']}/similar", params={"top_k": 100}
    ).json()["results"]
    assert len(everything) == len(ids) - 1


def test_label_filter_and_media(loaded) -> None:  # type: ignore[no-untyped-def]
    client, ids = loaded
    picture = photos()["camera"]
    results = search(client, encoded(picture), top_k=20, label="early")
    assert len(results) == sum(folder_of(n) == "early" for n in ids)
    assert {r["label"] for r in results} == {"early"}
    assert results[0]["id"] == ids["camera"]
    assert search(client, encoded(picture), label="no such label") == []

    top = results[0]
    thumbnail = client.get(top["thumbnail_url"])
    assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/jpeg"
    assert "immutable" in thumbnail.headers["cache-control"] and thumbnail.headers["etag"]
    assert thumbnail.content.startswith(b"\xff\xd8") and max(decoded_size(thumbnail.content)) <= 256
    original = client.get(top["original_url"])
    assert original.headers["content-type"] == "image/png"
    assert original.content == encoded(picture.convert("RGB"))
    for url in [
        f"/collections/photos/items/{ids['camera']}/nothing",
        "/collections/photos/items/12345/thumbnail",
        "/collections/nope/items/1/original",
    ]:
        assert client.get(url).status_code == 404


def decoded_size(data: bytes) -> tuple[int, int]:
    from io import BytesIO

    from PIL import Image

    with Image.open(BytesIO(data)) as image:
        return image.size


def test_near_duplicates_return_the_variants_and_nothing_else(shared_images: TestClient) -> None:
    """Photos and their variants, loaded from a server folder (a subfolder per photo)."""
    client = shared_images
    pictures = photos()
    root = client.app.state.context.settings.data_roots[0] / "variants"  # type: ignore[attr-defined]
    count = 0
    for seed, (name, picture) in enumerate(pictures.items()):
        (root / name).mkdir(parents=True)
        (root / name / "original.png").write_bytes(encoded(picture))
        for how in ALTERATIONS:
            variant = encoded(altered(picture, how, seed), "JPEG", quality=90)
            (root / name / f"{how}.jpg").write_bytes(variant)
        count += 1 + len(ALTERATIONS)
    job = client.post("/collections/variants/loads/path", json={"path": "variants"}).json()
    job = wait_for_job(client, job["id"], timeout=300)
    assert job["added"] == count, job
    items = client.get("/collections/variants/items", params={"limit": 500}).json()
    family = {item["id"]: item["label"] for item in items}
    found = expected = 0
    for item in items:
        if not item["filename"].endswith("original.png"):
            continue
        response = client.get(f"/collections/variants/items/{item['id']}/duplicates")
        body = response.json()
        assert body["min_score"] == 0.6 and not body["truncated"]
        labels = [family[r["id"]] for r in body["results"]]
        assert set(labels) <= {item["label"]}, (item["label"], labels)  # nothing unrelated
        assert item["id"] not in {r["id"] for r in body["results"]}
        found += len(labels)
        expected += len(ALTERATIONS)
    assert found / expected >= 0.9, f"near-duplicate recall {found}/{expected}"
    query = encoded(altered(pictures["rocket"], "crop70", 1), "JPEG", quality=80)
    response = client.post("/collections/variants/duplicates", files={"file": ("q.jpg", query)})
    labels = {family[r["id"]] for r in response.json()["results"]}
    assert labels == {"rocket"}
    snapshot(client)


def test_same_image_twice_is_one_item_and_add_one(loaded) -> None:  # type: ignore[no-untyped-def]
    client, _ = loaded
    data = encoded(photos()["horse"])
    response = client.post("/collections/photos/items", files={"file": ("h.png", data)})
    assert response.status_code == 409
    new = encoded(altered(photos()["horse"], "flip", 0))
    added = client.post(
        "/collections/photos/items",
        files={"file": ("flipped.png", new)},
        data={"label": "mirrored"},
    )
    assert added.status_code == 201, added.text
    body = added.json()
    assert body["filename"] == "flipped.png" and body["label"] == "mirrored"
    assert search(client, new, top_k=1)[0]["id"] == body["id"]
    assert client.delete(f"/collections/photos/items/{body['id']}").status_code == 204
    assert client.get(body["thumbnail_url"]).status_code == 404
    again = client.post("/collections/photos/loads/path", json={"path": "missing"})
    assert again.status_code == 404


def test_every_endpoint_is_documented(shared_images: TestClient) -> None:
    assert_documented(shared_images)
    assert shared_images.get("/docs").status_code == shared_images.get("/redoc").status_code == 200
