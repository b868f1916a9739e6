"""Videos every browser plays: which originals qualify, and an H.264 copy of the others.

Chromium, Firefox and Safari all play H.264 in MP4; WebM with VP8, VP9 or AV1 plays in the
first two. Anything else (AVI, Matroska, MPEG-4 Part 2, HEVC ...) gets a copy made by the
load with PyAV: the picture upright in H.264 (libx264), at most ``height`` lines, and the
first soundtrack in AAC.
"""

from fractions import Fraction
from pathlib import Path
from typing import Any

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
# Suffix: (a name of the demuxer FFmpeg read the file with, the codecs that play).
PLAYS = {
    ".mp4": ("mp4", {"h264"}),
    ".m4v": ("mp4", {"h264"}),
    ".mov": ("mp4", {"h264"}),
    ".webm": ("webm", {"vp8", "vp9", "av1", "libdav1d"}),
}


def media_type(suffix: str) -> str:
    return MEDIA_TYPES.get(suffix.lower(), "application/octet-stream")


def plays_in_browsers(suffix: str, info: VideoInfo) -> bool:
    """Served as its suffix says, the file plays: the right container (not, say, a raw
    H.264 stream named ``.mp4``) holding a codec browsers decode."""
    container, codecs = PLAYS.get(suffix.lower(), ("", set()))
    return container in info.container.split(",") and info.codec in codecs


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
        sound = reader.streams.audio[0] if reader.streams.audio else None
        # The first soundtrack as AAC (PyAV resamples to what the encoder takes).
        aac = writer.add_stream("aac", rate=sound.rate or 44100) if sound is not None else None
        first: int | None = None
        last = -1
        written = 0
        for packet in reader.demux(*(s for s in (video, sound) if s is not None)):
            if packet.stream is sound:
                assert aac is not None
                for chunk in _decoded(packet):
                    chunk.pts = None  # the encoder counts samples from the start
                    writer.mux(aac.encode(chunk))
                continue
            for frame in packet.decode():
                if not isinstance(frame, av.VideoFrame):
                    continue
                if frame.pts is None or frame.time_base is None:  # a raw stream: count
                    pts, base = written, 1 / rate
                else:
                    first = frame.pts if first is None else first
                    pts, base = frame.pts - first, frame.time_base
                if pts <= last:  # keep timestamps increasing, as MP4 requires
                    continue
                last = pts
                converted = _upright(frame, info, width_out, height_out)
                # The encoder rescales from the source's time base: variable rates are kept.
                converted.pts = pts
                converted.time_base = base
                writer.mux(out.encode(converted))
                written += 1
        if not written:
            raise VideoRejected("no frames could be copied")
        writer.mux(out.encode(None))
        if aac is not None:
            writer.mux(aac.encode(None))
    return target


def _decoded(packet: Any) -> list[av.AudioFrame]:
    """A soundtrack packet's samples; a damaged one is left out (a short gap in the sound)
    rather than failing the whole copy."""
    try:
        return [chunk for chunk in packet.decode() if isinstance(chunk, av.AudioFrame)]
    except av.error.FFmpegError:
        return []


def _upright(frame: av.VideoFrame, info: VideoInfo, width: int, height: int) -> av.VideoFrame:
    if not info.rotation:
        scaled: av.VideoFrame = frame.reformat(width=width, height=height, format="yuv420p")
        return scaled
    upright: Image.Image = frame.to_image()  # type: ignore[no-untyped-call]
    picture = upright.rotate(info.rotation, expand=True).resize((width, height))
    converted: av.VideoFrame = av.VideoFrame.from_image(picture)  # type: ignore[no-untyped-call]
    planar: av.VideoFrame = converted.reformat(format="yuv420p")
    return planar
