"""Reading a video once: check its stream, sample frames, and find its shots on the same pass.

Every decoded frame goes through the shot detector (PySceneDetect's content detector, on a
small copy); a frame is *sampled* (kept for encoding) every ``every`` seconds and at every
cut, so each shot has at least one sampled frame and a shot's first frame is its start.
Times come from the frames' presentation timestamps, so a variable frame rate is honoured;
rotation metadata (phone videos) turns the sampled pictures upright.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter as time_now

import av
import av.error
from PIL import Image
from scenedetect import ContentDetector
from scenedetect.common import FrameTimecode
from scenedetect.detector import FlashFilter

# Sampled pictures keep this shorter side: the image encoder crops 87.5% of it and resizes
# to 224 px, so nothing finer is ever used.
SAMPLE_SIDE = 256
# The shot detector sees frames this wide (its scores do not need more).
DETECT_WIDTH = 192
# A cut closer than this to the previous one is ignored (flashes, fades).
MIN_SHOT_SECONDS = 0.5
CONTENT_THRESHOLD = 27.0
# A video whose frames stop before this fraction of its declared duration is truncated.
TRUNCATED = 0.9
# Frame rates outside this range come from broken headers (a time base of 0, say): such a
# video's rate is taken as unknown, and frames without times are timed at ASSUMED_FPS.
PLAUSIBLE_FPS = (1 / 60, 1000.0)
ASSUMED_FPS = 25.0


class VideoRejected(Exception):
    """Why a file cannot be read as a video, in a sentence for people."""


class NotAVideo(VideoRejected):
    """The file is not a video at all (as opposed to a damaged or oversized one)."""


@dataclass(frozen=True)
class Limits:
    max_pixels: int  # width x height of the video stream
    max_seconds: float  # duration


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about the video stream, checked against the limits."""

    codec: str
    container: str  # FFmpeg's demuxer names, e.g. "mov,mp4,m4a,3gp,3g2,mj2" or "h264"
    width: int  # as displayed (after rotation)
    height: int
    fps: float  # average frame rate; 0 when the file does not say
    duration: float | None  # seconds; None when the file does not say
    declared: float | None  # how long the frames should run, where the file says so
    rotation: int  # degrees counter-clockwise to turn frames upright


@dataclass(frozen=True)
class Sample:
    """One sampled frame: its time and upright picture (and a larger one, for faces)."""

    time: float
    picture: Image.Image
    detail: Image.Image | None = None


def probe(path: Path, limits: Limits) -> VideoInfo:
    """Open the file and check its first video stream; raises VideoRejected with the reason."""
    container = _open(path)
    with container:
        kind = container.format.name
        if kind == "image2" or kind.endswith("_pipe"):  # how FFmpeg reads single pictures
            picture = kind.removesuffix("_pipe")
            raise NotAVideo(f"a still picture ({picture}), not a video")
        streams = container.streams.video
        if not streams:
            kinds = sorted({stream.type for stream in container.streams})
            has = f"only {', '.join(kinds)} streams" if kinds else "no streams"
            raise NotAVideo(f"no video stream in the file ({has})")
        stream = streams[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        if width <= 0 or height <= 0:
            raise VideoRejected("the video stream has no frame size")
        if width * height > limits.max_pixels:
            raise VideoRejected(
                f"frames of {width}x{height} are over the limit of {limits.max_pixels:,} pixels"
            )
        own = (
            float(stream.duration * stream.time_base)
            if stream.duration and stream.duration > 0 and stream.time_base is not None
            else None
        )
        whole = container.duration / av.time_base if container.duration else None
        duration = own or whole
        # How long the frames should run: the stream's own duration, or the container's when
        # no other stream (a longer soundtrack) may account for it.
        declared = own if own is not None else whole if len(container.streams) == 1 else None
        if duration is not None and duration > limits.max_seconds:
            raise VideoRejected(
                f"{duration:.0f} s of video is over the limit of {limits.max_seconds:.0f} s"
            )
        rotation = _frame_rotation(_first_frame(container))
        if rotation in (90, 270):
            width, height = height, width
        rate = stream.average_rate or stream.guessed_rate
        return VideoInfo(
            codec=stream.codec_context.name,
            container=kind,
            width=width,
            height=height,
            fps=float(rate) if rate and PLAUSIBLE_FPS[0] <= rate <= PLAUSIBLE_FPS[1] else 0.0,
            duration=duration,
            declared=declared,
            rotation=rotation,
        )


def _open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), metadata_errors="ignore")
    except (av.error.InvalidDataError, av.error.EOFError) as error:
        raise NotAVideo("not a video file, or too damaged to read") from error
    except av.error.FFmpegError as error:
        raise VideoRejected(f"cannot be read as a video: {error.strerror}") from error


def _first_frame(container: av.container.InputContainer) -> av.VideoFrame:
    """The first decodable frame (its side data says how the video is rotated)."""
    stream = container.streams.video[0]
    try:
        for frame in container.decode(stream):
            return frame
    except av.error.FFmpegError as error:
        raise VideoRejected(f"the video stream cannot be decoded ({error.strerror})") from error
    raise VideoRejected("the video stream has no decodable frames")


class FramePass:
    """One decoding pass over a video: iterate for the sampled frames; afterwards ``cuts``
    holds the shot start times (0 first) and ``end`` the time the last frame ends."""

    def __init__(
        self,
        path: Path,
        info: VideoInfo,
        limits: Limits,
        every: float,
        check: Callable[[], None] = lambda: None,
        detail_side: int | None = None,
    ) -> None:
        self.path = path
        self.detail_side = detail_side  # also keep each sample at up to this shorter side
        self.info = info
        self.limits = limits
        self.every = every
        self.check = check  # raises to stop (a cancelled job)
        self.cuts: list[float] = []
        self.end = 0.0
        self.decoded = 0
        self.decode_seconds = 0.0  # decoding and scaling, on whichever thread iterates
        self.shot_seconds = 0.0  # the shot detector

    def __iter__(self) -> Iterator[Sample]:
        container = _open(self.path)
        with container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = self.info.fps or ASSUMED_FPS
            detector = ContentDetector(
                threshold=CONTENT_THRESHOLD,
                min_scene_len=max(1, round(MIN_SHOT_SECONDS * rate)),
                filter_mode=FlashFilter.Mode.SUPPRESS,
            )
            origin: float | None = None
            next_sample = 0.0
            last_time = -1.0
            clock = time_now()
            try:
                for frame in container.decode(stream):
                    if self.decoded % 64 == 0:
                        self.check()
                    time = self._time(frame, rate, self.decoded)
                    if origin is None:
                        origin = time
                    time -= origin
                    if time <= last_time:  # a repeated or out-of-order timestamp
                        time = last_time + 1 / rate
                    if time > self.limits.max_seconds:
                        raise VideoRejected(
                            f"the video runs past the limit of {self.limits.max_seconds:.0f} s"
                        )
                    small = frame.to_ndarray(
                        width=DETECT_WIDTH,
                        height=max(2, round(DETECT_WIDTH * frame.height / frame.width / 2) * 2),
                        format="bgr24",
                    )
                    detecting = time_now()
                    cut = bool(detector.process_frame(FrameTimecode(self.decoded, rate), small))
                    cut = cut and time > 0
                    self.shot_seconds += time_now() - detecting
                    if cut:
                        self.cuts.append(time)
                    if self.decoded == 0 or cut or time >= next_sample - 1e-6:
                        sample = Sample(time, self._picture(frame), self._detail(frame))
                        self.decode_seconds += time_now() - clock
                        yield sample
                        clock = time_now()
                        next_sample = time + self.every
                    self.decoded += 1
                    last_time = time
                    self.end = time + 1 / rate
            except av.error.FFmpegError as error:
                raise VideoRejected(
                    f"the video is damaged at {max(0.0, last_time):.1f} s ({error.strerror})"
                ) from error
            self.decode_seconds += time_now() - clock
        self.decode_seconds -= self.shot_seconds
        if self.decoded == 0:
            raise VideoRejected("the video stream has no decodable frames")
        declared = self.info.declared
        if declared is not None and self.end < TRUNCATED * declared - 1:
            raise VideoRejected(
                f"the frames end at {self.end:.1f} s of the {declared:.1f} s the file "
                "declares: the file is truncated or damaged"
            )
        self.cuts.insert(0, 0.0)

    @staticmethod
    def _time(frame: av.VideoFrame, rate: float, decoded: int) -> float:
        seconds = _seconds(frame)
        return decoded / rate if seconds is None else seconds

    def _picture(self, frame: av.VideoFrame) -> Image.Image:
        return _upright(frame, self.info, SAMPLE_SIDE)

    def _detail(self, frame: av.VideoFrame) -> Image.Image | None:
        return _upright(frame, self.info, self.detail_side) if self.detail_side else None


def frames_at(path: Path, info: VideoInfo, times: Sequence[float], side: int) -> list[Image.Image]:
    """Upright pictures of the frames shown at ``times`` (seconds as ``FramePass`` counts
    them, ascending), the shorter side at most ``side``: a seek per time, for a few frames
    in detail (the keyframes whose text is read); a file that cannot seek (a raw stream) is
    read once from the start instead."""
    try:
        with _open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            origin = _seconds(_first_frame(container)) or 0.0
            try:
                return [_after_seek(container, stream, origin + t, info, side) for t in times]
            except av.error.FFmpegError:
                pass
        with _open(path) as container:
            return _in_one_pass(container, [origin + t for t in times], info, side)
    except av.error.FFmpegError as error:
        raise VideoRejected(f"the video cannot be read again ({error.strerror})") from error


def _after_seek(
    container: av.container.InputContainer,
    stream: av.VideoStream,
    target: float,
    info: VideoInfo,
    side: int,
) -> Image.Image:
    if stream.time_base is not None:  # to the keyframe at or before the time
        container.seek(int(target / stream.time_base), stream=stream, backward=True)
    chosen = None
    for frame in container.decode(stream):
        chosen = frame
        seconds = _seconds(frame)
        if seconds is None or seconds >= target - 1e-3:
            break
    if chosen is None:
        raise VideoRejected(f"the video has no frame at {target:.1f} s")
    return _upright(chosen, info, side)


def _in_one_pass(
    container: av.container.InputContainer, targets: list[float], info: VideoInfo, side: int
) -> list[Image.Image]:
    stream = container.streams.video[0]
    rate = info.fps or ASSUMED_FPS
    pictures: list[Image.Image] = []
    last = None
    for decoded, frame in enumerate(container.decode(stream)):
        last = frame
        seconds = _seconds(frame)
        time = decoded / rate if seconds is None else seconds
        while len(pictures) < len(targets) and time >= targets[len(pictures)] - 1e-3:
            pictures.append(_upright(frame, info, side))
        if len(pictures) == len(targets):
            return pictures
    if last is None:
        raise VideoRejected("the video stream has no decodable frames")
    return pictures + [_upright(last, info, side)] * (len(targets) - len(pictures))


def _seconds(frame: av.VideoFrame) -> float | None:
    """When the frame is shown, from its timestamp (None if it has none)."""
    if frame.pts is None or frame.time_base is None:
        return None
    return float(frame.pts * frame.time_base)


def _upright(frame: av.VideoFrame, info: VideoInfo, side: int) -> Image.Image:
    width, height = frame.width, frame.height
    scale = side / min(width, height)
    if scale < 1:
        width, height = max(2, round(width * scale)), max(2, round(height * scale))
    picture: Image.Image = frame.to_image(width=width, height=height)  # type: ignore[no-untyped-call]
    return picture.rotate(info.rotation, expand=True) if info.rotation else picture


def _frame_rotation(frame: av.VideoFrame) -> int:
    """Degrees to turn the frame counter-clockwise to show it upright (its display matrix)."""
    try:
        return round(frame.rotation) % 360
    except (AttributeError, TypeError, ValueError):
        return 0
