"""Copied footage: which stored videos contain the same frames as a query video, and where.

Each sampled frame of the query is searched on its own; a stored frame that matches
it says "the query at ``t`` is this video at ``t + offset``". Footage copied from a video
keeps one offset over many frames in a row, whatever the frame rate, size, borders or
encoding of the copy, while frames that only look alike (the same shot a second later, a
similar scene elsewhere) scatter over offsets. So per stored video the offsets vote, the
best offset's consecutive frames become an aligned segment (query start-end matched to
stored start-end), and the vote is repeated on the frames left, for a copy made of several
pieces.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from common import Match

# At most this many aligned segments per stored video.
MAX_SEGMENTS = 8
# A segment needs this many matching query frames ...
MIN_FRAMES = 3
# ... and a frame matches the segment's offset within this many sampling intervals.
OFFSET_TOLERANCE = 1.0
# Query frames without a match inside a segment (a flash, a caption laid over it).
MAX_GAP = 2


@dataclass(frozen=True)
class QueryFrame:
    time: float
    until: float


@dataclass(frozen=True)
class Segment:
    """Query ``query_start``-``query_end`` is the stored video's ``start``-``end``."""

    query_start: float
    query_end: float
    start: float
    end: float
    score: float  # mean cosine similarity of the matched frames
    frames: int


@dataclass(frozen=True)
class CopyFound:
    video: dict[str, Any]  # the record of one of its frames (the video's fields)
    seconds: float  # of the query found in it
    segments: list[Segment]


def find_copies(
    query: Sequence[QueryFrame],
    matches: Sequence[Sequence[Match]],
    interval: float,
    min_score: float,
    top_videos: int,
) -> list[CopyFound]:
    """Stored videos ranked by how many seconds of the query they contain.

    ``matches[i]`` are the stored frames found for ``query[i]``; ``interval`` is the
    sampling interval of the stored frames (the unit of the offset vote)."""
    pairs: dict[int, list[tuple[int, Match]]] = defaultdict(list)
    for index, found in enumerate(matches):
        for match in found:
            if match.score >= min_score:
                pairs[int(match.record["video"])].append((index, match))
    results = []
    for candidates in pairs.values():
        segments = _segments(query, candidates, interval)
        if segments:
            seconds = sum(s.query_end - s.query_start for s in segments)
            results.append(CopyFound(candidates[0][1].record, seconds, segments))
    results.sort(key=lambda c: (-c.seconds, str(c.video["video_name"])))
    return results[:top_videos]


def _segments(
    query: Sequence[QueryFrame], candidates: list[tuple[int, Match]], interval: float
) -> list[Segment]:
    found: list[Segment] = []
    left = candidates
    while left and len(found) < MAX_SEGMENTS:
        offset = _best_offset(query, left, interval)
        chosen = _one_to_one(query, left, offset, interval)
        runs = _runs(sorted(chosen))
        kept = [run for run in runs if len(run) >= MIN_FRAMES]
        if not kept:
            break
        covered: set[int] = set()
        for run in kept:
            # The stored span is the query's moved by the run's offset (copies play at the
            # same speed), which places it closer than the sampled frames' own times.
            moved = _refined(query, run, left, offset, interval)
            start, end = query[run[0]].time, query[run[-1]].until
            found.append(
                Segment(
                    query_start=start,
                    query_end=end,
                    start=max(0.0, start + moved),
                    end=min(float(chosen[run[-1]].record["duration"]), end + moved),
                    score=sum(chosen[i].score for i in run) / len(run),
                    frames=len(run),
                )
            )
            covered.update(range(run[0], run[-1] + 1))
        left = [(index, match) for index, match in left if index not in covered]
    return sorted(found, key=lambda s: s.query_start)


def _one_to_one(
    query: Sequence[QueryFrame], candidates: list[tuple[int, Match]], offset: float, interval: float
) -> dict[int, Match]:
    """Per query frame, its match nearest ``offset`` (within the tolerance); a stored frame
    goes to one query frame only, the one it is nearest to. So a still or slow shot, which
    looks alike a few seconds either side, does not stretch a segment past the copy."""
    near = [
        (index, match)
        for index, match in candidates
        if abs(_offset(query, index, match) - offset) <= OFFSET_TOLERANCE * interval
    ]
    chosen: dict[int, Match] = {}
    taken: set[int] = set()

    def nearest_first(pair: tuple[int, Match]) -> tuple[float, float]:
        return abs(_offset(query, *pair) - offset), -pair[1].score

    for index, match in sorted(near, key=nearest_first):
        if index not in chosen and match.id not in taken:
            chosen[index] = match
            taken.add(match.id)
    return chosen


def _refined(
    query: Sequence[QueryFrame],
    run: list[int],
    candidates: list[tuple[int, Match]],
    offset: float,
    interval: float,
) -> float:
    """The offset, to a twentieth of an interval, that best lines the run up: each query
    frame moved by it lands on a stored frame (within half an interval) that matched it,
    scoring that match. Inside a shot that barely moves many offsets score alike; the cuts,
    sampled in both videos, are where a wrong offset lands frames in the wrong shot."""
    members = set(run)
    found: dict[int, list[Match]] = defaultdict(list)
    for index, match in candidates:
        if index in members:
            found[index].append(match)

    def fit(moved: float) -> float:
        total = 0.0
        for index in run:
            target = query[index].time + moved
            near = [
                m for m in found[index] if abs(float(m.record["time"]) - target) <= interval / 2
            ]
            total += max((m.score for m in near), default=0.0)
        return total

    steps = [offset + interval * k / 20 for k in range(-20, 21)]
    return max(steps, key=lambda moved: (round(fit(moved), 6), -abs(moved - offset)))


def _offset(query: Sequence[QueryFrame], index: int, match: Match) -> float:
    return float(match.record["time"]) - query[index].time


def _best_offset(
    query: Sequence[QueryFrame], candidates: list[tuple[int, Match]], interval: float
) -> float:
    """The offset most matched frames agree on: votes (scores) in bins one interval wide,
    each bin counted with its neighbours; the score-weighted mean offset of the winner."""
    votes: dict[int, float] = defaultdict(float)
    for index, match in candidates:
        votes[round(_offset(query, index, match) / interval)] += match.score
    best = max(
        votes, key=lambda b: (votes.get(b - 1, 0) + votes[b] + votes.get(b + 1, 0), votes[b])
    )
    near = [
        (_offset(query, index, match), match.score)
        for index, match in candidates
        if abs(round(_offset(query, index, match) / interval) - best) <= 1
    ]
    return sum(o * s for o, s in near) / sum(s for _, s in near)


def _runs(indices: list[int]) -> list[list[int]]:
    """Query frame indices split where more than ``MAX_GAP`` frames in a row are missing."""
    runs: list[list[int]] = []
    for index in indices:
        if runs and index - runs[-1][-1] <= MAX_GAP + 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    return runs
