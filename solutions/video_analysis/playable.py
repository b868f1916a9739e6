"""Videos every browser plays: which originals qualify, and an H.264 copy of the others.

Chromium, Firefox and Safari all play H.264 in MP4; WebM with VP8, VP9 or AV1 plays in the
first two. Anything else (AVI, Matroska, MPEG-4 Part 2, HEVC ...) gets a copy made by the
load with PyAV's libx264: the picture only, upright, at most ``height`` lines.
"""

from fractions import Fraction
from pathlib import Path

import av
import av.error
from PIL import Image

from solutions.video_analysis.decode import VideoInfo, VideoRejected

MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".avi": "video/x-msvideo",
}
PLAYS = {
    ".mp4": {"h264"},
    ".m4v": {"h264"},
    ".mov": {"h264"},
    ".webm": {"vp8", "vp9", "av1", "libdav1d"},
}


def media_type(suffix: str) -> str:
    return MEDIA_TYPES.get(suffix.lower(), "application/octet-stream")


def plays_in_browsers(suffix: str, info: VideoInfo) -> bool:
    return info.codec in PLAYS.get(suffix.lower(), set())


def make_playable(source: Path, target: Path, info: VideoInfo, height: int) -> Path:
    """Write an H.264 MP4 of the source's picture to ``target`` (fast-start, yuv420p);
    raises VideoRejected if the source cannot be turned into one."""
    try:
        return _transcode(source, target, info, height)
    except av.error.FFmpegError as error:
        raise VideoRejected(f"no playable copy could be made ({error.strerror})") from error


def _transcode(source: Path, target: Path, info: VideoInfo, height: int) -> Path:
    scale = min(1.0, height / info.height)
    width_out = max(2, round(info.width * scale / 2) * 2)
    height_out = max(2, round(info.height * scale / 2) * 2)
    with (
        av.open(str(source), metadata_errors="ignore") as reader,
        av.open(str(target), "w", format="mp4", options={"movflags": "+faststart"}) as writer,
    ):
        video = reader.streams.video[0]
        video.thread_type = "AUTO"
        rate = Fraction(info.fps).limit_denominator(1001) if info.fps else Fraction(25)
        out = writer.add_stream("libx264", rate=rate, options={"preset": "veryfast", "crf": "26"})
        out.width, out.height, out.pix_fmt = width_out, height_out, "yuv420p"
        first: int | None = None
        last = -1
        for frame in reader.decode(video):
            if frame.pts is None:
                continue
            first = frame.pts if first is None else first
            pts = frame.pts - first
            if pts <= last:  # keep timestamps increasing, as MP4 requires
                continue
            last = pts
            if info.rotation:
                upright: Image.Image = frame.to_image()  # type: ignore[no-untyped-call]
                picture = upright.rotate(info.rotation, expand=True).resize((width_out, height_out))
                converted = av.VideoFrame.from_image(picture)  # type: ignore[no-untyped-call]
                converted = converted.reformat(format="yuv420p")
            else:
                converted = frame.reformat(width=width_out, height=height_out, format="yuv420p")
            # The encoder rescales from the source's time base: variable rates are kept.
            converted.pts = pts
            converted.time_base = frame.time_base
            writer.mux(out.encode(converted))
        writer.mux(out.encode(None))
    return target
