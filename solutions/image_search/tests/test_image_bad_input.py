"""Image search bad input: per-item job errors or the documented status; nothing partial."""

import io
import os
import stat
import zipfile
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from tests.helpers import error_of, snapshot, wait_for_job
from tests.imagery import encoded, photos


def media_ids(client: TestClient) -> set[int]:
    context = client.app.state.context  # type: ignore[attr-defined]
    media = context.storage.media
    return set().union(
        *(media.item_ids(context.collections.get(n).physical) for n in context.collections.names())
    )


def consistent(client: TestClient) -> dict:
    """Both stores agree, and the media files are exactly those of stored items."""
    state = snapshot(client)
    stored = {i for name in state["collections"] for i in state[name]}
    assert media_ids(client) == stored
    return state


def bomb_png() -> bytes:
    """A 20000 x 20000 one-bit PNG: a few kilobytes that decode to 400 megapixels."""
    out = io.BytesIO()
    Image.new("1", (20000, 20000)).save(out, "PNG")
    return out.getvalue()


def test_bad_files_in_a_load_are_reported_and_skipped(
    shared_images: TestClient, tmp_path: Path
) -> None:
    client = shared_images
    good = encoded(photos()["coffee"], "JPEG", quality=90)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("ok/rocket.png", encoded(photos()["rocket"]))
        zipped.writestr("../escape.png", encoded(photos()["moon"]))
        link = zipfile.ZipInfo("link.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zipped.writestr(link, "/etc/passwd")
        zipped.writestr("notes.txt", b"hello")
    files = [
        ("file", ("coffee.jpg", good, "image/jpeg")),
        ("file", ("report.jpg", b"%PDF-1.7\n1 0 obj<<>>endobj\n", "image/jpeg")),
        ("file", ("cut.jpg", good[: len(good) // 2], "image/jpeg")),
        ("file", ("empty.png", b"", "image/png")),
        ("file", ("bomb.png", bomb_png(), "image/png")),
        ("file", ("bundle.zip", archive.getvalue(), "application/zip")),
    ]
    response = client.post("/collections/mixed/loads", files=files)
    assert response.status_code == 202, response.text
    job = wait_for_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["added"] == 2 and job["failed"] == 7 and job["total"] == job["done"] == 9, job
    reasons = {e["item"]: e["reason"] for e in job["errors"]}
    assert reasons["report.jpg"] == "not an image (looks like a PDF)"
    assert "truncated" in reasons["cut.jpg"]
    assert reasons["empty.png"] == "the file is empty"
    assert "too large" in reasons["bomb.png"] or "bomb" in reasons["bomb.png"]
    assert "bundle.zip/../escape.png" in reasons and "bundle.zip/link.png" in reasons
    assert "bundle.zip/notes.txt" in reasons
    names = {i["filename"] for i in client.get("/collections/mixed/items").json()}
    assert names == {"coffee.jpg", "bundle.zip/ok/rocket.png"}
    consistent(client)
    uploads = client.app.state.context.settings.upload_dir  # type: ignore[attr-defined]
    assert not uploads.exists() or os.listdir(uploads) == []  # the upload was cleaned up


def test_rejected_requests_change_nothing(shared_images: TestClient, tmp_path: Path) -> None:
    client = shared_images
    assert (
        client.post(
            "/collections/rejects/items", files={"file": ("a.png", encoded(photos()["astronaut"]))}
        ).status_code
        == 201
    )
    before = consistent(client)
    root = client.app.state.context.settings.data_roots[0]  # type: ignore[attr-defined]
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.png").write_bytes(encoded(photos()["moon"]))
    (root / "sneaky").symlink_to(outside)
    big = os.urandom(9 * 1024 * 1024)  # over the 8 MiB limit of the test app
    good = encoded(photos()["coins"], "JPEG")
    cases = [
        (
            client.post(
                "/collections/rejects/loads", files={"file": ("big.zip", big, "application/zip")}
            ),
            413,
        ),
        (
            client.post(
                "/collections/rejects/loads", files={"file": ("notes.txt", b"hi", "text/plain")}
            ),
            415,
        ),
        (
            client.post(
                "/collections/rejects/loads",
                files=[
                    ("file", ("a.jpg", good, "image/jpeg")),
                    ("file", ("b.pdf", b"%PDF", "x/y")),
                ],
            ),
            415,
        ),
        (
            client.post(
                "/collections/rejects/loads",
                files={"file": ("bad.zip", b"PK\x03\x04 not really", "application/zip")},
            ),
            422,
        ),
        (client.post("/collections/rejects/loads/path", json={"path": str(outside)}), 403),
        (client.post("/collections/rejects/loads/path", json={"path": "../outside"}), 403),
        (client.post("/collections/rejects/loads/path", json={"path": "sneaky"}), 403),
        (
            client.post(
                "/collections/rejects/search", files={"file": ("q.jpg", b"%PDF-1.4", "image/jpeg")}
            ),
            415,
        ),
        (
            client.post(
                "/collections/rejects/search", files={"file": ("q.jpg", good[:500], "image/jpeg")}
            ),
            422,
        ),
        (client.post("/collections/rejects/search", files={"file": ("q.jpg", b"")}), 422),
        (client.post("/collections/rejects/search", files={"file": ("q.png", bomb_png())}), 422),
        (
            client.post(
                "/collections/rejects/search", data={"top_k": "0"}, files={"file": ("q.jpg", good)}
            ),
            422,
        ),
        (
            client.post(
                "/collections/rejects/search",
                data={"top_k": "101"},
                files={"file": ("q.jpg", good)},
            ),
            422,
        ),
        (client.post("/collections/nope/search", files={"file": ("q.jpg", good)}), 404),
        (client.post("/collections/rejects/items", files={"file": ("q.jpg", b"GIF89a")}), 422),
        (client.post("/collections/rejects/items", files={"file": ("q.txt", b"text")}), 415),
        (client.get("/collections/rejects/items/1/similar"), 404),
        (client.get("/collections/rejects/items/1/duplicates"), 404),
        (client.get("/collections/rejects/items/1/thumbnail"), 404),
        (client.get("/collections/rejects/items/x/original"), 422),
        (client.post("/collections/Bad%20Name/search", files={"file": ("q.jpg", good)}), 422),
    ]
    for response, status in cases:
        assert response.status_code == status, (status, response.request.url, response.text)
        error_of(response)
    assert consistent(client) == before


def test_links_and_odd_labels(shared_images: TestClient, tmp_path: Path) -> None:
    client = shared_images
    root = client.app.state.context.settings.data_roots[0]  # type: ignore[attr-defined]
    outside = tmp_path / "secret.zip"
    with zipfile.ZipFile(outside, "w") as zipped:
        zipped.writestr("private.png", encoded(photos()["moon"]))
    folder = root / "linked"
    folder.mkdir()
    (folder / "link.zip").symlink_to(outside)
    (folder / "linked_folder").symlink_to(tmp_path)  # a link to a folder is not walked into
    (folder / "real.png").write_bytes(encoded(photos()["clock"]))
    job = client.post(
        "/collections/links/loads/path", json={"path": "linked", "label": 'line\nbreak "q"'}
    )
    job = wait_for_job(client, job.json()["id"])
    assert job["added"] == 1 and job["failed"] == 1, job
    assert {e["reason"] for e in job["errors"]} == {"a symbolic link; links are not followed"}
    query = {"file": ("q.png", encoded(photos()["clock"]))}
    found = client.post(
        "/collections/links/search", files=query, data={"label": 'line\nbreak "q"'}
    ).json()["results"]
    assert [r["filename"] for r in found] == ["real.png"]
    assert (
        client.post("/collections/links/search", files=query, data={"label": "line"}).json()[
            "results"
        ]
        == []
    )
    consistent(client)
