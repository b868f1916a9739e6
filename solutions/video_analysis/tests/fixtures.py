"""Video analysis test fixtures: test videos with known content, and one app per backend pair.

The main test video (``clip``) shows six pictures one after the other, each a shot, with
cuts at known times; one is a title card with the words QUARTERLY RESULTS 2026.
"""

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from common.app import create_app
from common.encoders.efficientnet import EfficientNetLite0Encoder
from common.encoders.imagenet import ImageNetLabels
from solutions.video_analysis.app import SOLUTION
from solutions.video_analysis.faces import FaceReader
from solutions.video_analysis.indexing import FrameEncoder
from solutions.video_analysis.ocr import ScreenText
from solutions.video_analysis.settings import VideoSettings
from tests.fixtures import make_settings, provide_backend
from tests.helpers import with_encoder
from tests.imagery import photos
from tests.videos import Scene, caption, copy_of, make_video

TITLE = "QUARTERLY RESULTS 2026"
# (picture, seconds on screen): shots start at 0, 5, 10, 14, 20, 24; the clip ends at 30.
SCRIPT = (
    ("astronaut", 5),
    ("chelsea", 5),
    ("coffee", 4),
    ("rocket", 6),
    ("title", 4),
    ("horse", 6),
)
MAX_SECONDS = 120  # the test apps' duration limit
SAMPLE = Path(__file__).parents[1] / "data" / "sample"
# The excerpt: 8% of each border cut off, half the size, 15 fps, encoded again (crf 32).
EXCERPT: dict[str, Any] = {
    "start": 8.5,
    "end": 22.5,
    "crop": 0.08,
    "scale": 0.5,
    "fps": 15,
    "crf": 32,
}
COCKATOO_EXCERPT = (2.4, 12.0)


@dataclass(frozen=True)
class Truth:
    """Where each picture of the clip is on screen."""

    spans: dict[str, tuple[float, float]]
    cuts: tuple[float, ...]
    duration: float


def truth() -> Truth:
    spans, start = {}, 0.0
    for name, seconds in SCRIPT:
        spans[name] = (start, start + seconds)
        start += seconds
    return Truth(spans, tuple(s for s, _ in spans.values()), start)


def pictures() -> dict[str, Image.Image]:
    found = photos()
    return {name: caption(TITLE) if name == "title" else found[name] for name, _ in SCRIPT}


@dataclass(frozen=True)
class SampleVideos:
    clip: Path  # 30 s, 640x360, 25 fps, H.264 MP4
    short: Path  # 6 s of other pictures, H.264 MP4
    avi: Path  # MPEG-4 Part 2 in AVI: browsers cannot play it
    rotated: Path  # recorded sideways, with rotation metadata (a phone video)
    variable_rate: Path  # frames at irregular times
    many_streams: Path  # a video stream and 100 audio streams
    no_timestamps: Path  # 3 s of raw H.264: no container, no timestamps, no duration
    with_sound: Path  # 3 s of MPEG-4 Part 2 and MP2 sound in AVI: browsers play neither
    excerpt: Path  # 3 s of another picture, then ``clip`` from 8.5 to 22.5 s, altered
    cockatoo_excerpt: Path  # the cockatoo sample (real footage) from 2.4 to 12 s, altered
    bad: dict[str, Path]  # what a load must refuse, by what is wrong


@pytest.fixture(scope="session")
def frame_encoder(efficientnet: EfficientNetLite0Encoder) -> FrameEncoder:
    return FrameEncoder(efficientnet, ImageNetLabels(), ScreenText(), FaceReader())


@pytest.fixture(scope="session")
def test_videos(tmp_path_factory: pytest.TempPathFactory) -> SampleVideos:
    folder = tmp_path_factory.mktemp("videos")
    scenes = pictures()
    clip = make_video(folder / "clip.mp4", [Scene(scenes[n], s) for n, s in SCRIPT])
    others = photos()
    short = make_video(
        folder / "short.mp4", [Scene(others["clock"], 3), Scene(others["camera"], 3)]
    )
    avi = make_video(
        folder / "old.avi",
        [Scene(others["coins"], 3), Scene(others["moon"], 3)],
        codec="mpeg4",
        size=(320, 240),
    )
    return SampleVideos(
        clip=clip,
        short=short,
        avi=avi,
        rotated=_rotated(folder / "phone.mp4", others["chelsea"]),
        variable_rate=_variable_rate(folder / "vfr.mkv", others["coffee"], others["rocket"]),
        many_streams=_many_streams(folder / "streams.mkv", others["astronaut"]),
        no_timestamps=_no_timestamps(folder / "raw.mp4"),
        with_sound=_with_sound(folder / "sound.avi", others["clock"]),
        excerpt=copy_of(clip, folder / "excerpt.mp4", before=[Scene(others["logo"], 3)], **EXCERPT),
        cockatoo_excerpt=copy_of(
            SAMPLE / "cockatoo.mp4",
            folder / "cockatoo_excerpt.mp4",
            start=COCKATOO_EXCERPT[0],
            end=COCKATOO_EXCERPT[1],
            crop=0.12,
            scale=0.75,
            fps=30,
        ),
        bad=_bad_files(folder / "bad", clip),
    )


def _rotated(path: Path, picture: Image.Image) -> Path:
    """Recorded turned clockwise, with a display matrix saying to turn it back."""
    sideways = picture.convert("RGB").resize((320, 180)).rotate(-90, expand=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height = sideways.size
        stream.pix_fmt = "yuv420p"
        stream.set_display_rotation(90)
        for index in range(75):
            frame = av.VideoFrame.from_image(sideways)
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _variable_rate(path: Path, first: Image.Image, second: Image.Image) -> Path:
    """4 s of ``first`` at 5 fps, then ``second`` at 30 fps until 8 s: times from pts only."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height = 320, 180
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, 1000)
        times = [i * 200 for i in range(20)] + [4000 + round(i * 1000 / 30) for i in range(120)]
        for pts in times:
            picture = first if pts < 4000 else second
            frame = av.VideoFrame.from_image(picture.convert("RGB").resize((320, 180)))
            frame.pts = pts
            frame.time_base = Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _with_sound(path: Path, picture: Image.Image, seconds: int = 3) -> Path:
    """A tone under a still picture, as an old camera would have recorded it."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=25)
        video.width, video.height = 320, 240
        video.pix_fmt = "yuv420p"
        sound = container.add_stream("mp2", rate=44100)
        still = picture.convert("RGB").resize((320, 240))
        for index in range(seconds * 25):
            frame = av.VideoFrame.from_image(still)
            frame.pts = index
            container.mux(video.encode(frame))
        tone = (np.sin(np.arange(seconds * 44100) / 8) * 8000).astype(np.int16)
        for start in range(0, tone.size, 1152):
            chunk = av.AudioFrame.from_ndarray(
                tone[None, start : start + 1152], format="s16", layout="mono"
            )
            chunk.sample_rate = 44100
            chunk.pts = start
            container.mux(sound.encode(chunk))
        container.mux(video.encode(None))
        container.mux(sound.encode(None))
    return path


def _many_streams(path: Path, picture: Image.Image, audio_streams: int = 100) -> Path:
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height = 320, 180
        video.pix_fmt = "yuv420p"
        audios = [container.add_stream("pcm_s16le", rate=8000) for _ in range(audio_streams)]
        for index in range(50):
            frame = av.VideoFrame.from_image(picture.convert("RGB").resize((320, 180)))
            frame.pts = index
            container.mux(video.encode(frame))
        silence = np.zeros((1, 8000), dtype=np.int16)
        for stream in audios:
            frame = av.AudioFrame.from_ndarray(silence, format="s16", layout="mono")
            frame.sample_rate = 8000
            frame.pts = 0
            container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        container.mux(video.encode(None))
    return path


def _bad_files(folder: Path, clip: Path) -> dict[str, Path]:
    folder.mkdir()
    data = clip.read_bytes()
    files: dict[str, Path] = {}

    def write(name: str, content: bytes) -> None:
        files[name.split(".")[0]] = folder / name
        (folder / name).write_bytes(content)

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("clip.mp4", data)
    write("zip.mp4", archive.getvalue())
    write("text.mp4", b"this is a text file, not a video\n" * 20)
    write("empty.mp4", b"")
    write("truncated.mp4", data[: len(data) // 3])
    write("garbled.mp4", data[:4096] + bytes(len(data) - 4096))
    files["cut"] = _cut(folder / "cut.mkv")
    # The clip with a time base of 0 (its track's time scale), and with frames that last
    # 0 s (its table of frame durations): no frame rate and no usable times.
    write("no_time_base.mp4", _patched(data, b"mdhd", 16, 0))
    write("zero_durations.mp4", _patched(data, b"stts", 16, 0))
    files["audio"] = _audio_only(folder / "audio.mp4")
    files["huge"] = _single_frame(folder / "huge.mp4", (7680, 4320))
    files["long"] = _long(folder / "long.mp4", seconds=MAX_SECONDS + 30)
    files["no_frames"] = _no_frames(folder / "no_frames.mkv")
    files["bomb"] = _claims_huge_frames(folder / "bomb.avi", 12000)
    still = io.BytesIO()
    photos()["coffee"].save(still, "PNG")
    write("still.mp4", still.getvalue())
    return files


def _patched(mp4: bytes, box: bytes, offset: int, value: int) -> bytes:
    """An MP4 with the 32-bit number at ``offset`` bytes into its first ``box`` replaced."""
    patched = bytearray(mp4)
    start = patched.index(box) + offset
    patched[start : start + 4] = value.to_bytes(4, "big")
    return bytes(patched)


def _cut(path: Path) -> Path:
    """A Matroska file cut in half: it opens and decodes, but its frames stop at 5 s of 12."""
    whole = make_video(
        path.with_name("whole.mkv"), [Scene(p, 4) for p in list(photos().values())[:3]]
    )
    data = whole.read_bytes()
    whole.unlink()
    path.write_bytes(data[: len(data) * 2 // 5])
    return path


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=44100)
        tone = (np.sin(np.arange(44100) / 10) * 8000).astype(np.int16)[None, :]
        frame = av.AudioFrame.from_ndarray(tone, format="s16", layout="mono")
        frame.sample_rate = 44100
        frame.pts = 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _single_frame(path: Path, size: tuple[int, int]) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=1, options={"preset": "ultrafast"})
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        frame = av.VideoFrame(size[0], size[1], "yuv420p")
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.pts = 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _claims_huge_frames(path: Path, side: int) -> Path:
    """A 6 KB Motion JPEG AVI of one 16x16 frame whose headers say it is ``side`` x ``side``
    (a decompression bomb: tiny file, huge frames if anything believed it)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=1)
        stream.width, stream.height = 16, 16
        stream.pix_fmt = "yuvj420p"
        black = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
        frame = black.reformat(format="yuvj420p")
        frame.pts = 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    data = bytearray(path.read_bytes())
    wide = side.to_bytes(4, "little")
    at = data.index(b"avih") + 8  # the AVI main header: dwWidth, dwHeight at 32 and 36
    data[at + 32 : at + 40] = wide + wide
    at = data.index(b"strf") + 8  # the stream's BITMAPINFOHEADER: biWidth, biHeight
    data[at + 4 : at + 12] = wide + wide
    at = data.index(b"\xff\xc0")  # the JPEG frame header: height, width
    data[at + 5 : at + 9] = side.to_bytes(2, "big") * 2
    path.write_bytes(bytes(data))
    return path


def _no_timestamps(path: Path, seconds: int = 3) -> Path:
    """A raw H.264 stream (no container: no timestamps, no duration) named ``.mp4``."""
    with av.open(str(path), "w", format="h264") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height = 320, 180
        stream.pix_fmt = "yuv420p"
        for index in range(seconds * 25):
            pixels = np.full((180, 320, 3), index * 3 % 255, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _long(path: Path, seconds: int) -> Path:
    """A tiny video at 1 fps that runs for ``seconds``."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=1, options={"preset": "ultrafast"})
        stream.width, stream.height = 64, 64
        stream.pix_fmt = "yuv420p"
        for index in range(seconds):
            frame = av.VideoFrame.from_ndarray(
                np.full((64, 64, 3), index % 255, dtype=np.uint8), format="rgb24"
            )
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _no_frames(path: Path) -> Path:
    """A container with a declared video stream and not one packet in it."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height = 320, 180
        stream.pix_fmt = "yuv420p"
        container.start_encoding()
    return path


def video_settings(backend: object, workdir: Path, **extra: object) -> VideoSettings:
    return make_settings(
        backend,  # type: ignore[arg-type]
        workdir,
        VideoSettings,
        max_upload_bytes=64 * 1024 * 1024,
        video_max_seconds=MAX_SECONDS,
        video_query_max_seconds=60,
        video_max_pixels=1920 * 1080,
        **extra,
    )


@pytest.fixture(scope="module", params=["lite", "server"])
def shared_video(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    frame_encoder: FrameEncoder,
) -> Iterator[TestClient]:
    """One video app for a whole module, per backend pair."""
    workdir = tmp_path_factory.mktemp(f"video-{request.param}")
    backend = provide_backend(request.param, request, workdir)
    settings = video_settings(backend, workdir)
    with TestClient(create_app(with_encoder(SOLUTION, frame_encoder), settings)) as client:
        yield client
