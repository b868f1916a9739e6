"""Test videos made with PyAV: known pictures at known times.

A ``Scene`` is a picture shown for some seconds; ``make_video`` writes them one after the
other (each a shot) with exact timestamps, so a test knows where every cut and every
picture is.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps


@dataclass(frozen=True)
class Scene:
    picture: Image.Image
    seconds: float


def fit(picture: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The picture scaled to fit ``size``, centred on black bars, keeping its proportions."""
    return ImageOps.pad(picture.convert("RGB"), size, Image.Resampling.BICUBIC)


def caption(text: str, size: tuple[int, int] = (640, 360)) -> Image.Image:
    """Dark text on a light frame, as a title card shows it."""
    frame = Image.new("RGB", size, (235, 235, 225))
    draw = ImageDraw.Draw(frame)
    font = ImageFont.load_default(size=max(12, size[1] // 9))
    box = draw.textbbox((0, 0), text, font=font)
    position = ((size[0] - (box[2] - box[0])) // 2, (size[1] - (box[3] - box[1])) // 2)
    draw.text(position, text, fill=(20, 20, 30), font=font)
    return frame


def make_video(
    path: Path,
    scenes: Sequence[Scene],
    *,
    size: tuple[int, int] = (640, 360),
    fps: int = 25,
    codec: str = "libx264",
    motion: bool = True,
) -> Path:
    """Write the scenes as a video; each scene drifts slowly (``motion``) so frames differ."""
    options = {"crf": "23", "preset": "veryfast"} if codec == "libx264" else {}
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps, options=options)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        index = 0
        for scene in scenes:
            base = np.asarray(fit(scene.picture, size))
            count = round(scene.seconds * fps)
            for step in range(count):
                pixels = np.roll(base, step // 5, axis=1) if motion else base
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
                frame.pts = index
                index += 1
                container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def copy_of(
    source: Path,
    path: Path,
    *,
    start: float = 0.0,
    end: float | None = None,
    crop: float = 0.0,
    scale: float = 1.0,
    fps: int = 25,
    crf: int = 30,
    before: Sequence[Scene] = (),
) -> Path:
    """Footage of ``source`` from ``start`` to ``end`` as another file would carry it:
    ``crop`` of each border cut off, resized by ``scale``, resampled to ``fps`` and encoded
    again at a lower quality; ``before`` are other scenes played first."""
    with av.open(str(source)) as reader:
        stream = reader.streams.video[0]
        decoded = []
        for frame in reader.decode(stream):
            seconds = float(frame.pts * frame.time_base)
            if seconds >= start and (end is None or seconds < end):
                decoded.append((seconds - start, frame.to_image()))
    width, height = decoded[0][1].size
    left, top = round(width * crop), round(height * crop)
    box = (left, top, width - left, height - top)
    size = (round((box[2] - box[0]) * scale / 2) * 2, round((box[3] - box[1]) * scale / 2) * 2)
    with av.open(str(path), "w") as container:
        out = container.add_stream("libx264", rate=fps, options={"crf": str(crf)})
        out.width, out.height = size
        out.pix_fmt = "yuv420p"
        out.time_base = Fraction(1, fps)
        index = 0

        def write(picture: Image.Image) -> None:
            nonlocal index
            frame = av.VideoFrame.from_image(picture)
            frame.pts = index
            index += 1
            container.mux(out.encode(frame))

        for scene in before:
            still = fit(scene.picture, size)
            for _ in range(round(scene.seconds * fps)):
                write(still)
        shown, length = 0, decoded[-1][0]
        for step in range(int(length * fps) + 1):
            while shown + 1 < len(decoded) and decoded[shown + 1][0] <= step / fps + 1e-6:
                shown += 1
            write(decoded[shown][1].crop(box).resize(size, Image.Resampling.BILINEAR))
        container.mux(out.encode(None))
    return path


def web_copy(source: Path, target: Path, *, crf: int = 8) -> Path:
    """The video again at a high quality (a large file: 4 MB for the 30 s test clip) with
    its index (``moov``) before the frames, as video is published on the web: a player can
    start, and seek with Range requests, before the whole file is in."""
    with (
        av.open(str(source)) as reader,
        av.open(str(target), "w", format="mp4", options={"movflags": "+faststart"}) as writer,
    ):
        video = reader.streams.video[0]
        options = {"crf": str(crf), "preset": "ultrafast"}
        out = writer.add_stream("libx264", rate=video.average_rate, options=options)
        out.width, out.height = video.codec_context.width, video.codec_context.height
        out.pix_fmt = "yuv420p"
        for frame in reader.decode(video):
            frame.pict_type = av.video.frame.PictureType.NONE
            writer.mux(out.encode(frame))
        writer.mux(out.encode(None))
    return target
