"""From matching frames to moments: runs of adjacent sampled frames become start-end segments.

A video is ranked by its best frame; its moments are listed in time order, each with the
score of its best frame, so a timeline can mark them all.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from common import Match


@dataclass(frozen=True)
class Found:
    """A segment of a video and the frame that matched best in it."""

    start: float
    end: float
    score: float
    best: Match
    name: str = ""  # words search: the enrolled person on screen, for a person's moment


@dataclass(frozen=True)
class VideoFound:
    video: dict[str, Any]  # the record of one of its frames (the video's fields)
    score: float
    moments: list[Found]


def by_video(matches: Iterable[Match]) -> dict[int, list[Match]]:
    grouped: dict[int, list[Match]] = defaultdict(list)
    for match in matches:
        grouped[int(match.record["video"])].append(match)
    return grouped


def frame_moments(matches: Iterable[Match], top_videos: int) -> list[VideoFound]:
    """Matching frames merged per video: consecutive frames (``frame`` n, n+1, ...) make one
    moment from the first one's time to the last one's ``until``."""
    found = []
    for frames in by_video(matches).values():
        frames.sort(key=lambda m: int(m.record["frame"]))
        runs: list[list[Match]] = []
        for match in frames:
            if runs and int(match.record["frame"]) == int(runs[-1][-1].record["frame"]) + 1:
                runs[-1].append(match)
            else:
                runs.append([match])
        moments = [_moment(run[0].record["time"], run[-1].record["until"], run) for run in runs]
        found.append(_video(frames, moments))
    return _ranked(found, top_videos)


def shot_moments(matches: Iterable[Match], top_videos: int) -> list[VideoFound]:
    """Matching keyframes as the shots they stand for, in time order per video."""
    found = []
    for frames in by_video(matches).values():
        frames.sort(key=lambda m: float(m.record["shot_start"]))
        moments = [_moment(m.record["shot_start"], m.record["shot_end"], [m]) for m in frames]
        found.append(_video(frames, moments))
    return _ranked(found, top_videos)


def merged(found: Iterable[VideoFound], top_videos: int) -> list[VideoFound]:
    """The moments several searches found, one result per video, in time order."""
    videos: dict[int, VideoFound] = {}
    for video in found:
        key = int(video.video["video"])
        if key in videos:
            other = videos[key]
            moments = sorted(other.moments + video.moments, key=lambda m: (m.start, m.end))
            video = VideoFound(other.video, max(other.score, video.score), moments)
        videos[key] = video
    return _ranked(list(videos.values()), top_videos)


def _moment(start: float, end: float, run: list[Match]) -> Found:
    best = max(run, key=lambda m: m.score)
    return Found(float(start), float(end), best.score, best)


def _video(frames: list[Match], moments: list[Found]) -> VideoFound:
    return VideoFound(frames[0].record, max(m.score for m in moments), moments)


def _ranked(found: list[VideoFound], top: int) -> list[VideoFound]:
    return sorted(found, key=lambda v: (-v.score, str(v.video["video_name"])))[:top]
