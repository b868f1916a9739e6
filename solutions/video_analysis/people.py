"""People in videos: the faces a load found, the people enrolled by name, who is where.

Faces live in the companion collection ``faces`` of a video collection (namespace
``video_faces``, same name): one item per face found on a sampled frame (its 128-d
descriptor, its box, its frame's time), and one per enrolment photo of a person
(``video`` 0, with the person's id and name). Who a face is, is decided when asked: its
nearest enrolment face, if at least ``SAME_PERSON`` alike. So enrolling someone names their
faces in every video already stored, and naming a cluster of unknown faces enrols them.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from sqlalchemy import BigInteger, Float, Integer, String

from common import Collection, Column, Match, Record
from common.collection import content_id
from solutions.video_analysis.faces import SAME_PERSON
from solutions.video_analysis.moments import Found, VideoFound

FACES = "faces"  # the companion kind
PHOTO = 0  # the ``video`` of enrolment faces
MAX_PERSON_NAME = 100
SEARCH_BATCH = 64
# A words query looks at this many enrolment faces, and the people of the first this many.
NAME_HITS = 200
NAMED_PEOPLE = 10
# Faces of one video are grouped with a face of the cluster at least this alike.
CLUSTER_SIMILARITY = SAME_PERSON


class FaceRecord(Record):
    """A face: on a sampled frame of a video, or on a person's enrolment photo."""

    video: Annotated[int, Column(BigInteger(), filter="int64", index=True)]
    video_name: Annotated[str, Column(String(255))]
    frame: Annotated[int, Column(Integer())]
    time: Annotated[float, Column(Float())]
    until: Annotated[float, Column(Float())]
    left: Annotated[int, Column(Integer())]
    top: Annotated[int, Column(Integer())]
    width: Annotated[int, Column(Integer())]
    height: Annotated[int, Column(Integer())]
    person: Annotated[int, Column(BigInteger(), filter="int64", index=True)] = 0
    name: Annotated[str, Column(String(MAX_PERSON_NAME), fulltext=True)] = ""


def person_id(name: str) -> int:
    """People are told apart by name (case and spacing aside): enrolling a name again adds
    photos to the same person."""
    return content_id("person:" + " ".join(name.casefold().split()))


def face_id(digest: str, frame: int, index: int) -> int:
    return content_id(f"{digest}:face:{frame}:{index}")


@dataclass(frozen=True)
class Span:
    start: float
    end: float


@dataclass(frozen=True)
class Known:
    person: int
    name: str
    faces: list[dict[str, Any]]
    spans: list[Span]


@dataclass(frozen=True)
class Unknown:
    faces: list[dict[str, Any]]  # the first is the clearest (the largest)
    spans: list[Span]


def spans_of(faces: Sequence[dict[str, Any]]) -> list[Span]:
    """Faces on consecutive sampled frames (one missed frame allowed) make one span."""
    frames = sorted({(int(f["frame"]), float(f["time"]), float(f["until"])) for f in faces})
    spans: list[list[tuple[int, float, float]]] = []
    for frame in frames:
        if spans and frame[0] - spans[-1][-1][0] <= 2:
            spans[-1].append(frame)
        else:
            spans.append([frame])
    return [Span(run[0][1], run[-1][2]) for run in spans]


def enrolled(faces: Collection) -> dict[int, str]:
    """Every enrolled person's name by id."""
    return {int(r["person"]): str(r["name"]) for r in faces.where({"video": PHOTO})}


def identify(faces: Collection, vectors: np.ndarray) -> list[Match | None]:
    """For each face vector, the enrolment face nearest to it if it is the same person."""
    found: list[Match | None] = []
    for start in range(0, len(vectors), SEARCH_BATCH):
        rows = faces.search(vectors[start : start + SEARCH_BATCH], 1, where_not={"person": 0})
        found.extend(row[0] if row and row[0].score >= SAME_PERSON else None for row in rows)
    return found


def people_in(faces: Collection, video: int) -> tuple[list[Known], list[Unknown]]:
    """Who is in a video: each known person with their spans, and the clusters of faces
    nobody enrolled (largest cluster first)."""
    rows = faces.where({"video": video}, order_by=("frame", "id"))
    if not rows:
        return [], []
    stored = faces.vectors([int(r["id"]) for r in rows])
    rows = [r for r in rows if int(r["id"]) in stored]
    vectors = np.asarray([stored[int(r["id"])] for r in rows], dtype=np.float32)
    names = enrolled(faces)
    by_person: dict[int, list[dict[str, Any]]] = defaultdict(list)
    strangers: list[int] = []
    for index, match in enumerate(identify(faces, vectors) if names else [None] * len(rows)):
        if match is None:
            strangers.append(index)
        else:
            by_person[int(match.record["person"])].append(rows[index])
    known = [
        Known(person, names.get(person, ""), found, spans_of(found))
        for person, found in by_person.items()
    ]
    known.sort(key=lambda k: (-len(k.faces), k.name))
    unknown = [
        Unknown(members, spans_of(members))
        for members in _clusters([rows[i] for i in strangers], vectors[strangers])
    ]
    return known, unknown


def _clusters(rows: list[dict[str, Any]], vectors: np.ndarray) -> list[list[dict[str, Any]]]:
    """Faces grouped with the first cluster holding a face at least CLUSTER_SIMILARITY
    alike (single linkage over the faces in time order); largest clusters first, each
    with its largest face first."""
    groups: list[list[int]] = []
    for index in range(len(rows)):
        for group in groups:
            if float(np.max(vectors[group] @ vectors[index])) >= CLUSTER_SIMILARITY:
                group.append(index)
                break
        else:
            groups.append([index])
    clusters = [
        sorted((rows[i] for i in group), key=lambda r: -int(r["width"]) * int(r["height"]))
        for group in groups
    ]
    return sorted(clusters, key=lambda c: (-len(c), float(c[0]["time"])))


@dataclass(frozen=True)
class Appearance:
    video: dict[str, Any]  # a face record of the video (its name, its id)
    faces: int
    spans: list[Span]


def appearances(faces: Collection, person: int, limit: int = 10_000) -> list[Appearance]:
    """Every stored video the person is in, with the spans, most seen first."""
    photos = faces.where({"person": person, "video": PHOTO})
    stored = faces.vectors([int(r["id"]) for r in photos])
    if not stored:
        return []
    vectors = np.asarray(list(stored.values()), dtype=np.float32)
    candidates: dict[int, dict[str, Any]] = {}
    for start in range(0, len(vectors), SEARCH_BATCH):
        rows = faces.search(vectors[start : start + SEARCH_BATCH], limit, where={"person": 0})
        for row in rows:
            for match in row:
                if match.score >= SAME_PERSON:
                    candidates[match.id] = match.record
    if not candidates:
        return []
    ids = list(candidates)
    found = faces.vectors(ids)
    ids = [i for i in ids if i in found]
    matrix = np.asarray([found[i] for i in ids], dtype=np.float32)
    # Kept only where this person is the nearest enrolled one (not someone more alike).
    mine = [
        candidates[i]
        for i, match in zip(ids, identify(faces, matrix), strict=True)
        if match is not None and int(match.record["person"]) == person
    ]
    by_video: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for record in mine:
        by_video[int(record["video"])].append(record)
    found_in = [Appearance(rows[0], len(rows), spans_of(rows)) for rows in by_video.values()]
    return sorted(found_in, key=lambda a: (-a.faces, str(a.video["video_name"])))


def name_moments(frames: Collection, faces: Collection, query: str) -> list[VideoFound]:
    """The enrolled people whose names share words with ``query``, as moments of the videos
    they are in: each span of time one of them is on screen, scored by the full-text
    relevance of the name, its picture the span's first frame."""
    people: dict[int, Match] = {}
    for match in faces.lexical_search(query, NAME_HITS):
        people.setdefault(int(match.record["person"]), match)
    sampled: dict[int, list[dict[str, Any]]] = {}
    found: dict[int, list[Found]] = defaultdict(list)
    for person, named in list(people.items())[:NAMED_PEOPLE]:
        for appearance in appearances(faces, person):
            video = int(appearance.video["video"])
            if video not in sampled:
                sampled[video] = frames.where({"video": video}, order_by=("frame",))
            if not sampled[video]:
                continue  # being deleted: its frames go first
            name = str(named.record["name"])
            for span in appearance.spans:
                first = _frame_at(sampled[video], span.start)
                best = Match(int(first["id"]), named.score, first)
                found[video].append(Found(span.start, span.end, named.score, best, name))
    return [
        VideoFound(sampled[video][0], max(m.score for m in moments), moments)
        for video, moments in found.items()
    ]


def _frame_at(frames: list[dict[str, Any]], time: float) -> dict[str, Any]:
    return min(frames, key=lambda frame: abs(float(frame["time"]) - time))
