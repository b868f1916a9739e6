"""The video app's people routes: enrol people by photo or by naming faces, who is in a
video, every appearance of a person, and the pictures of faces."""

import io
from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from common import (
    AppEncoder,
    Collection,
    ErrorResponse,
    ExistingCollection,
    InvalidInput,
    ItemId,
    Responses,
    url_for,
)
from common.collection import Entry, content_id
from common.errors import NotFound
from common.images import decode_image, refused_as_http
from solutions.video_analysis.faces import FaceReader, crop
from solutions.video_analysis.indexing import FrameEncoder
from solutions.video_analysis.people import (
    FACES,
    MAX_PERSON_NAME,
    PHOTO,
    FaceRecord,
    Span,
    appearances,
    people_in,
    person_id,
)
from solutions.video_analysis.routes import UNKNOWN, VIDEO_EXAMPLE, Video, video_of

router = APIRouter(tags=["people"])

MAX_PHOTOS = 20
MAX_PHOTO_PIXELS = 50_000_000
MAX_FACES_NAMED = 500
IMMUTABLE = {"cache-control": "public, max-age=31536000, immutable"}

PersonName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_PERSON_NAME),
]
PERSON_EXAMPLE: dict[str, Any] = {
    "id": "2546281034874931021",
    "name": "Eileen Collins",
    "faces": 1,
    "picture_url": "http://localhost:8000/collections/clips/faces/7204511869731329871/picture",
}
SPAN_EXAMPLE: dict[str, Any] = {"start": 0.0, "end": 5.0}
CLUSTER_EXAMPLE: dict[str, Any] = {
    "faces": ["7737527409659659567", "5497484632321042110"],
    "picture_url": "http://localhost:8000/collections/clips/faces/7737527409659659567/picture",
    "spans": [{"start": 7.2, "end": 10.2}],
}
KNOWN_EXAMPLE: dict[str, Any] = {"person": PERSON_EXAMPLE, "faces": 5, "spans": [SPAN_EXAMPLE]}
APPEARANCE_EXAMPLE: dict[str, Any] = {"video": VIDEO_EXAMPLE, "faces": 5, "spans": [SPAN_EXAMPLE]}


class Person(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [PERSON_EXAMPLE]})

    id: str = Field(description="From the name: enrolling the same name again adds photos.")
    name: str
    faces: int = Field(description="Its enrolment faces: one per photo, and the faces named.")
    picture_url: str = Field(description="One of the enrolment faces.")


class People(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"people": [PERSON_EXAMPLE]}]})

    people: list[Person]


class TimeSpan(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [SPAN_EXAMPLE]})

    start: float = Field(description="Seconds from the start of the video.")
    end: float


class KnownPerson(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [KNOWN_EXAMPLE]})

    person: Person
    faces: int = Field(description="Sampled frames the person's face was found on.")
    spans: list[TimeSpan] = Field(description="When the person is on screen.")


class FaceCluster(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [CLUSTER_EXAMPLE]})

    faces: list[str] = Field(description="The ids of its faces (send them to name it).")
    picture_url: str = Field(description="Its largest face.")
    spans: list[TimeSpan]


class VideoPeople(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"video": VIDEO_EXAMPLE, "known": [KNOWN_EXAMPLE], "unknown": [CLUSTER_EXAMPLE]}
            ]
        }
    )

    video: Video
    known: list[KnownPerson] = Field(description="Enrolled people seen, most seen first.")
    unknown: list[FaceCluster] = Field(
        description="Faces of people nobody enrolled, grouped by likeness, largest first."
    )


class Appearance(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [APPEARANCE_EXAMPLE]})

    video: Video
    faces: int
    spans: list[TimeSpan]


class Appearances(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"person": PERSON_EXAMPLE, "results": [APPEARANCE_EXAMPLE]}]
        }
    )

    person: Person
    results: list[Appearance] = Field(description="Videos the person is in, most seen first.")


class NameFaces(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "Eileen Collins", "faces": ["7204511869731329871"]}]
        },
    )

    name: PersonName
    faces: list[Annotated[str, StringConstraints(pattern=r"^[0-9]{1,19}$")]] = Field(
        min_length=1, max_length=MAX_FACES_NAMED, description="Face ids (e.g. a cluster's)."
    )


class Forgotten(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"person": "2546281034874931021", "faces": 2}]}
    )

    person: str
    faces: int = Field(description="Enrolment faces deleted.")


PHOTO_ERRORS: Responses = {
    413: {"model": ErrorResponse, "description": "Over the upload size limit."},
    415: {"model": ErrorResponse, "description": "Not a JPEG, PNG, WebP, BMP or GIF image."},
    422: {"model": ErrorResponse, "description": "No face or several faces, or a bad name."},
}


def _faces(collection: Collection) -> Collection:
    return collection.companion(FACES)


def _picture_url(request: Request, collection: Collection, face: int | str) -> str:
    return url_for(request, "get_face_picture", name=collection.name, face_id=str(face))


def _person(request: Request, collection: Collection, person: int) -> Person:
    photos = _faces(collection).where({"person": person, "video": PHOTO})
    if not photos:
        raise NotFound(f"no person {person} in collection {collection.name!r}")
    return _person_of(request, collection, photos)


def _person_of(request: Request, collection: Collection, photos: list[dict[str, Any]]) -> Person:
    return Person(
        id=str(photos[0]["person"]),
        name=photos[0]["name"],
        faces=len(photos),
        picture_url=_picture_url(request, collection, photos[0]["id"]),
    )


def _everyone(request: Request, collection: Collection) -> dict[int, Person]:
    """Every enrolled person by id, from one query."""
    photos: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for photo in _faces(collection).where({"video": PHOTO}):
        photos[int(photo["person"])].append(photo)
    return {person: _person_of(request, collection, own) for person, own in photos.items()}


def _spans(spans: list[Span]) -> list[TimeSpan]:
    return [TimeSpan(start=round(s.start, 3), end=round(s.end, 3)) for s in spans]


def _video(request: Request, collection: Collection, video: int) -> Video:
    heads = collection.where({"video": video, "frame": 0})
    if not heads:
        raise NotFound(f"no video {video} in collection {collection.name!r}")
    return video_of(request, collection, heads[0])


def _photo_entry(person: int, name: str, data: bytes, filename: str, reader: FaceReader) -> Entry:
    with refused_as_http(filename):
        picture = decode_image(data, max_pixels=MAX_PHOTO_PIXELS).image
    found = reader.find(picture)
    if not found:
        raise InvalidInput(f"{filename}: no face found (use a photo where the face is clear)")
    if len(found) > 1:
        raise InvalidInput(
            f"{filename}: {len(found)} faces found; use a photo of this person alone"
        )
    face = found[0]
    record = {
        "video": PHOTO,
        "video_name": filename[-255:],
        "frame": 0,
        "time": 0.0,
        "until": 0.0,
        "left": face.left,
        "top": face.top,
        "width": face.width,
        "height": face.height,
        "person": person,
        "name": name,
    }
    thumbnail = io.BytesIO()
    crop(picture, face).save(thumbnail, "JPEG", quality=85)
    item = content_id(f"photo:{person}:{face.vector.tobytes().hex()}")
    return Entry(item, face.vector, record, {"thumbnail": thumbnail.getvalue()})


@router.post(
    "/collections/{name}/people",
    status_code=201,
    summary="Enrol a person by photos",
    responses={**UNKNOWN, **PHOTO_ERRORS},
)
def enrol(
    collection: ExistingCollection,
    encoder: AppEncoder,
    request: Request,
    person_name: Annotated[
        PersonName, Form(alias="name", description="Their name.", examples=["Eileen Collins"])
    ],
    file: Annotated[
        list[UploadFile],
        File(description=f"Photos of them alone, 1 to {MAX_PHOTOS}: one face each."),
    ],
) -> Person:
    """Enrol a person: one face is read from each photo (a photo with no face or with
    several is refused, and then nothing is stored). From then on their faces are named in
    every video of the collection, those stored already included. The same name again
    adds photos to the same person.

    ```
    curl -F name="Eileen Collins" -F file=@eileen.jpg localhost:8000/collections/clips/people
    ```
    """
    if len(file) > MAX_PHOTOS:
        raise InvalidInput(f"at most {MAX_PHOTOS} photos at once")
    reader = _reader(encoder)
    person = person_id(person_name)
    name = _known_name(collection, person) or person_name
    entries = [
        _photo_entry(person, name, upload.file.read(), upload.filename or "photo", reader)
        for upload in file
    ]
    _faces(collection).add(entries)
    return _person(request, collection, person)


def _reader(encoder: object) -> FaceReader:
    if not isinstance(encoder, FrameEncoder) or encoder.faces is None:
        raise RuntimeError("the video app runs without its face reader")
    return encoder.faces


def _known_name(collection: Collection, person: int) -> str | None:
    photos = _faces(collection).where({"person": person, "video": PHOTO}, limit=1)
    return str(photos[0]["name"]) if photos else None


@router.post(
    "/collections/{name}/people/from-faces",
    status_code=201,
    summary="Enrol a person by naming faces found in videos",
    responses={
        **UNKNOWN,
        422: {"model": ErrorResponse, "description": "Unknown faces, or a bad name."},
    },
)
def name_faces(collection: ExistingCollection, request: Request, body: NameFaces) -> Person:
    """Name faces found in videos (say, a cluster of unknown faces from
    `GET .../videos/{id}/people`): they become enrolment faces of that person, who is then
    known in every video."""
    faces = _faces(collection)
    ids = [int(face) for face in body.faces]
    records = faces.records(ids)
    vectors = faces.vectors(ids)
    missing = [str(i) for i in ids if i not in records or i not in vectors]
    if missing:
        raise InvalidInput(f"no face {', '.join(missing[:5])} in collection {collection.name!r}")
    person = person_id(body.name)
    name = _known_name(collection, person) or body.name
    entries = []
    for face in ids:
        record = {field: records[face][field] for field in FaceRecord.model_fields}
        record.update(person=person, name=name, video=PHOTO)
        thumbnail = faces.media_path(face, "thumbnail")
        item = content_id(f"named:{person}:{face}")
        entries.append(Entry(item, vectors[face], record, {"thumbnail": thumbnail}))
    faces.add(entries)
    return _person(request, collection, person)


@router.get("/collections/{name}/people", summary="List the enrolled people", responses=UNKNOWN)
def list_people(collection: ExistingCollection, request: Request) -> People:
    """Everyone enrolled in the collection, by name, with how many enrolment faces each has
    and the picture of one."""
    people = _everyone(request, collection).values()
    return People(people=sorted(people, key=lambda p: p.name.casefold()))


@router.delete(
    "/collections/{name}/people/{person_id}",
    summary="Forget a person (their enrolment faces)",
    responses=UNKNOWN,
)
def forget(collection: ExistingCollection, person_id: ItemId) -> Forgotten:
    """The person's enrolment faces are deleted; their faces in videos stay, unknown again."""
    faces = _faces(collection)
    photos = faces.where({"person": person_id, "video": PHOTO})
    if not photos:
        raise NotFound(f"no person {person_id} in collection {collection.name!r}")
    removed = faces.delete([int(p["id"]) for p in photos])
    return Forgotten(person=str(person_id), faces=len(removed))


@router.get(
    "/collections/{name}/people/{person_id}/appearances",
    summary="Every appearance of a person",
    responses=UNKNOWN,
)
def person_appearances(
    collection: ExistingCollection, person_id: ItemId, request: Request
) -> Appearances:
    """The videos the person's face is in, each with the spans of time it is on screen."""
    person = _person(request, collection, person_id)
    found = []
    for appearance in appearances(_faces(collection), person_id):
        heads = collection.where({"video": int(appearance.video["video"]), "frame": 0})
        if heads:  # a video being deleted has lost its frames first
            video = video_of(request, collection, heads[0])
            found.append(
                Appearance(video=video, faces=appearance.faces, spans=_spans(appearance.spans))
            )
    return Appearances(person=person, results=found)


@router.get(
    "/collections/{name}/videos/{video_id}/people",
    summary="Who is in a video",
    responses=UNKNOWN,
)
def video_people(collection: ExistingCollection, video_id: ItemId, request: Request) -> VideoPeople:
    """The enrolled people whose faces the video shows, with when; and the faces of people
    nobody enrolled, grouped by likeness: name a group with
    `POST .../people/from-faces` and it is known from then on, here and everywhere."""
    video = _video(request, collection, video_id)
    known, unknown = people_in(_faces(collection), video_id)
    everyone = _everyone(request, collection) if known else {}
    return VideoPeople(
        video=video,
        known=[
            KnownPerson(
                person=everyone[k.person],
                faces=len(k.faces),
                spans=_spans(k.spans),
            )
            for k in known
            if k.person in everyone  # not forgotten meanwhile
        ],
        unknown=[
            FaceCluster(
                faces=[str(f["id"]) for f in u.faces],
                picture_url=_picture_url(request, collection, u.faces[0]["id"]),
                spans=_spans(u.spans),
            )
            for u in unknown
        ],
    )


@router.get(
    "/collections/{name}/faces/{face_id}/picture",
    summary="Get the picture of a face",
    response_class=FileResponse,
    responses={404: {"model": ErrorResponse, "description": "Unknown collection or face."}},
)
def get_face_picture(collection: ExistingCollection, face_id: ItemId) -> FileResponse:
    """A JPEG of the face with a margin, at most 96x96."""
    faces = _faces(collection)
    faces.get(face_id)  # 404 for an unknown face
    path = faces.media_path(face_id, "thumbnail")
    return FileResponse(path, media_type="image/jpeg", headers=IMMUTABLE)
