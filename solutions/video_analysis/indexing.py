"""How a load stores videos: decode once, encode the sampled frames, store a video at once.

A video's frames (vectors, records, thumbnails) and files go into the collection in one
``Collection.add``: a job stopped or killed in the middle of a video leaves none of it (the
layer's write order removes a half-written add at the next start), and a video loaded again
is found by its id (from the file's SHA-256) before anything is decoded.
"""

import hashlib
import io
import tempfile
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from common import Collection, Parsed
from common.collection import Entry, content_id
from common.encoders import Encoder
from common.encoders.efficientnet import EfficientNetLite0Encoder, normalized
from common.encoders.imagenet import ImageNetLabels
from common.jobs import JobContext
from common.loading import batched, flush_after_load, prefetch
from solutions.video_analysis.copies import QueryFrame
from solutions.video_analysis.decode import (
    FramePass,
    Limits,
    Sample,
    VideoInfo,
    VideoRejected,
    frames_at,
)
from solutions.video_analysis.faces import DETECT_SIDE, Face, FaceReader, crop
from solutions.video_analysis.items import MAX_NAME, FrameRecord, VideoOptions
from solutions.video_analysis.ocr import ScreenText
from solutions.video_analysis.people import FACES, FaceRecord, face_id
from solutions.video_analysis.playable import make_playable, media_type, plays_in_browsers
from solutions.video_analysis.settings import VideoSettings

ENCODE_BATCH = 32
THUMBNAIL_BOX = (320, 180)
TAGS_PER_SHOT = 3
# Keyframes are read for text at this shorter side (the detector works at up to 736 px).
OCR_SIDE = 720
MIN_TAG_PROBABILITY = 0.1


class FrameEncoder:
    """The shared image encoder, the words of a shot (its ImageNet classifier and OCR) and
    the faces on its frames."""

    def __init__(
        self,
        images: EfficientNetLite0Encoder,
        labels: ImageNetLabels,
        reader: ScreenText,
        faces: FaceReader | None = None,
        queries: Encoder | None = None,
    ) -> None:
        self.images = images
        self.labels = labels
        self.reader = reader
        self.faces = faces
        self.queries = queries or images  # the query pictures' encoder
        self.name = images.name
        self.dim = images.dim
        self.metric = images.metric

    def encode(self, pictures: Sequence[Image.Image]) -> np.ndarray:
        return np.asarray(self.queries.encode(pictures))

    def batched(self, wrap: Callable[[Encoder], Encoder]) -> "FrameEncoder":
        """Query pictures batched (``common/batching.py``); loads use ``images`` directly."""
        return FrameEncoder(self.images, self.labels, self.reader, self.faces, wrap(self.images))


@dataclass(frozen=True)
class VideoFile:
    """A video found by a load, checked (``probe``) but not decoded yet."""

    path: Path
    name: str
    info: VideoInfo
    size_bytes: int

    def digest(self) -> str:
        sha = hashlib.sha256()
        with self.path.open("rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                sha.update(block)
        return sha.hexdigest()


def frame_id(digest: str, frame: int) -> int:
    """The id of a sampled frame; frame 0's is the video's id."""
    return content_id(digest if frame == 0 else f"{digest}:{frame}")


def store_videos(
    job: JobContext,
    collection: Collection,
    items: Iterable[Parsed[VideoFile]],
    encoder: FrameEncoder,
    settings: VideoSettings,
) -> None:
    """A load's store step (``Loader.store``): each video whole, or not at all."""
    options = VideoOptions.model_validate(collection.options)
    limits = Limits(settings.video_max_pixels, settings.video_max_seconds)
    try:
        for parsed in items:
            job.check_cancelled()
            if parsed.value is None:
                job.error(parsed.item, parsed.error or "not a video")
                continue
            video = parsed.value
            expected = video.info.duration or 0.0
            job.advance(seconds_total=expected)
            started = job.progress.get("seconds", 0.0)
            with job.timed("hash"):
                digest = video.digest()
            if collection.stored_ids([frame_id(digest, 0)]):
                job.count(duplicates=1)
                job.advance(seconds=expected)
                continue
            with tempfile.TemporaryDirectory(prefix="video-") as scratch:
                try:
                    entries, faces = index_video(
                        job, video, digest, encoder, options, limits, settings, Path(scratch)
                    )
                except VideoRejected as error:
                    job.error(parsed.item, str(error))
                    _settle(job, started, expected)
                    continue
                _settle(job, started, expected)
                # Faces first: the video exists once its frames do, and recovery after a
                # crash removes faces of videos that never got their frames; holding the
                # collection keeps that recovery (in any process) from coming in between.
                with job.timed("store"), collection.exclusive():
                    if faces:
                        collection.companion(FACES).add(faces)
                    added, _ = collection.add(entries)
            # Nothing added: another load stored the same video meanwhile.
            job.count(added=1 if added else 0, duplicates=0 if added else 1)
    finally:
        flush_after_load(job, collection)


def _settle(job: JobContext, started: float, expected: float) -> None:
    """Once a video is over, its seconds done and its seconds in the total are made equal:
    it was refused part way, or it ran longer than its file said (or the file did not say)."""
    done = job.progress.get("seconds", 0.0) - started
    job.advance(seconds=max(0.0, expected - done), seconds_total=max(0.0, done - expected))


def clip_frames(
    path: Path, info: VideoInfo, limits: Limits, interval: float, encoder: Encoder
) -> tuple[list[QueryFrame], np.ndarray]:
    """A query clip's sampled frames (times) and their vectors, sampled as loads sample."""
    frames = FramePass(path, info, limits, interval)
    times: list[float] = []
    vectors = []
    for batch in batched(prefetch(frames, ahead=2 * ENCODE_BATCH), ENCODE_BATCH):
        vectors.append(np.asarray(encoder.encode([sample.picture for sample in batch])))
        times.extend(sample.time for sample in batch)
    ends = [*times[1:], frames.end]
    return [QueryFrame(t, e) for t, e in zip(times, ends, strict=True)], np.concatenate(vectors)


def index_video(
    job: JobContext,
    video: VideoFile,
    digest: str,
    encoder: FrameEncoder,
    options: VideoOptions,
    limits: Limits,
    settings: VideoSettings,
    scratch: Path,
) -> tuple[list[Entry], list[Entry]]:
    """Decode, sample, find shots, encode, label and find faces: the entries of one video
    (its frames) and of its faces."""
    reader = encoder.faces if options.faces else None
    frames = FramePass(
        video.path,
        video.info,
        limits,
        options.frame_interval,
        job.check_cancelled,
        detail_side=DETECT_SIDE if reader is not None else None,
    )
    times: list[float] = []  # of the sampled frames (their pictures are not kept)
    vectors: list[np.ndarray] = []
    probabilities: list[np.ndarray] = []
    thumbnails: list[bytes] = []
    found: list[tuple[int, Face, bytes]] = []  # (sampled frame, face, its picture)
    reported = 0.0
    # Decoding (and shot detection) runs ahead on its own thread while batches are encoded.
    for batch in batched(prefetch(frames, ahead=2 * ENCODE_BATCH), ENCODE_BATCH):
        with job.timed("encode"):
            features = encoder.images.features([sample.picture for sample in batch])
        vectors.append(normalized(features))
        if options.tags:
            with job.timed("tags"):
                probabilities.append(encoder.labels.probabilities(features))
        with job.timed("thumbnails"):
            thumbnails.extend(_jpeg(sample.picture) for sample in batch)
        if reader is not None:
            with job.timed("faces"):
                found.extend(_faces(reader, batch, len(times), video.info))
        times.extend(sample.time for sample in batch)
        job.advance(seconds=batch[-1].time - reported, frames=len(batch))
        reported = batch[-1].time
    job.advance(seconds=frames.end - reported)
    job.spent("decode", frames.decode_seconds)
    job.spent("shots", frames.shot_seconds)

    files: dict[str, bytes | Path] = {"original": video.path}
    playable = plays_in_browsers(video.path.suffix, video.info)
    if not playable:
        with job.timed("playable copy"):
            files["playable"] = make_playable(
                video.path, scratch / "playable.mp4", video.info, settings.video_playable_height
            )
    matrix = np.concatenate(vectors)
    words = np.concatenate(probabilities) if probabilities else None
    shots = Shots(frames.cuts, frames.end, times)
    keyframes = [shots.keyframe(shot) for shot in range(len(shots.cuts))]
    texts = [""] * len(keyframes)
    if options.ocr:
        with job.timed("ocr"):
            pictures = frames_at(video.path, video.info, [times[i] for i in keyframes], OCR_SIDE)
            texts = encoder.reader.read(pictures)
    untils = [*times[1:], frames.end]
    common: dict[str, Any] = {
        "video": frame_id(digest, 0),
        "video_name": video.name[-MAX_NAME:],
        "duration": round(frames.end, 3),
        "width": video.info.width,
        "height": video.info.height,
        "fps": round(video.info.fps, 3),
        "codec": video.info.codec[:40],
        "media_type": media_type(video.path.suffix),
        "playable": playable,
        "size_bytes": video.size_bytes,
    }
    entries = []
    for i, time in enumerate(times):
        shot = shots.of(i)
        keyframe = keyframes[shot] == i
        tags = ""
        if keyframe and words is not None:
            mean = words[shots.members(shot)].mean(axis=0)
            tags = ", ".join(encoder.labels.top(mean, TAGS_PER_SHOT, MIN_TAG_PROBABILITY))
        record = FrameRecord(
            **common,
            frame=i,
            time=round(time, 3),
            until=round(untils[i], 3),
            shot=shot,
            shot_start=round(shots.start(shot), 3),
            shot_end=round(shots.end(shot), 3),
            keyframe=keyframe,
            tags=tags,
            text=texts[shot] if keyframe else "",
        )
        item_files: dict[str, bytes | Path] = {"thumbnail": thumbnails[i]}
        if i == 0:
            item_files.update(files)
        entries.append(Entry(frame_id(digest, i), matrix[i], record.model_dump(), item_files))
    faces = [
        Entry(
            face_id(digest, frame, index),
            face.vector,
            FaceRecord(
                video=common["video"],
                video_name=common["video_name"],
                frame=frame,
                time=round(times[frame], 3),
                until=round(untils[frame], 3),
                left=face.left,
                top=face.top,
                width=face.width,
                height=face.height,
            ).model_dump(),
            {"thumbnail": picture},
        )
        for index, (frame, face, picture) in enumerate(found)
    ]
    return entries, faces


def _faces(
    reader: FaceReader, batch: Sequence[Sample], first: int, info: VideoInfo
) -> list[tuple[int, Face, bytes]]:
    """The faces on a batch of sampled frames (numbered from ``first``), with boxes in the
    video's own pixels and a picture of each."""
    found = []
    for offset, sample in enumerate(batch):
        picture = sample.detail or sample.picture
        scale = info.width / picture.width
        for face in reader.find(picture):
            buffer = io.BytesIO()
            crop(picture, face).save(buffer, "JPEG", quality=85)
            box = Face(
                left=round(face.left * scale),
                top=round(face.top * scale),
                width=round(face.width * scale),
                height=round(face.height * scale),
                vector=face.vector,
            )
            found.append((first + offset, box, buffer.getvalue()))
    return found


class Shots:
    """The shots of a video (from its cut times) and which sampled frames each holds."""

    def __init__(self, cuts: Sequence[float], end: float, times: Sequence[float]) -> None:
        self.cuts = list(cuts)
        self.ends = [*self.cuts[1:], end]
        self.times = list(times)
        self._shot = [bisect_right(self.cuts, t + 1e-6) - 1 for t in self.times]

    def of(self, sample: int) -> int:
        return self._shot[sample]

    def start(self, shot: int) -> float:
        return self.cuts[shot]

    def end(self, shot: int) -> float:
        return self.ends[shot]

    def members(self, shot: int) -> list[int]:
        return [i for i, s in enumerate(self._shot) if s == shot]

    def keyframe(self, shot: int) -> int:
        """The sampled frame nearest the middle of the shot."""
        middle = (self.start(shot) + self.end(shot)) / 2
        return min(self.members(shot), key=lambda i: abs(self.times[i] - middle))


def _jpeg(picture: Image.Image) -> bytes:
    copy = picture.copy()
    copy.thumbnail(THUMBNAIL_BOX, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    copy.save(buffer, "JPEG", quality=80)
    return buffer.getvalue()
