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
