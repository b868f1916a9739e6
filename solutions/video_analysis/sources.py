"""Where videos come from: one file or a folder of them (recursively).

Each file is checked when the load is accepted: one video that cannot be read is refused
at once (422); in a folder, each unreadable file is listed in the job and skipped.
Checking opens the container and decodes one frame; decoding the whole video is the
store step's work (``indexing``).
"""

from collections.abc import Iterator
from pathlib import Path

from common import InvalidInput, Loader, Parsed
from common.sources import files_below, unreadable
from solutions.video_analysis.decode import Limits, VideoRejected, probe
from solutions.video_analysis.indexing import VideoFile, store_videos
from solutions.video_analysis.playable import MEDIA_TYPES
from solutions.video_analysis.settings import VideoSettings

SUFFIXES = tuple(MEDIA_TYPES)


class VideoSource:
    """The parser of a video load."""

    def __init__(self, settings: VideoSettings) -> None:
        self.limits = Limits(settings.video_max_pixels, settings.video_max_seconds)

    def check(self, path: Path) -> None:
        found = [(file, name) for file, name in files_below(path) if _is_video_name(file)]
        if not found:
            raise InvalidInput(f"no video files ({', '.join(SUFFIXES)}) to load")
        if len(found) == 1:
            file, name = found[0]
            video = self._video(file, name)
            if video.value is None:
                raise InvalidInput(f"{name}: {video.error}")

    def count(self, path: Path) -> int:
        return sum(1 for _ in files_below(path))

    def parse(self, path: Path) -> Iterator[Parsed[VideoFile]]:
        for file, name in files_below(path):
            if reason := unreadable(file):
                yield Parsed(name, error=reason)
            elif not _is_video_name(file):
                yield Parsed(name, error=f"not a video file ({file.suffix or 'no suffix'})")
            else:
                yield self._video(file, name)

    def _video(self, file: Path, name: str) -> Parsed[VideoFile]:
        try:
            info = probe(file, self.limits)
        except VideoRejected as error:
            return Parsed(name, error=str(error))
        return Parsed(name, value=VideoFile(file, name, info, file.stat().st_size))


def _is_video_name(file: Path) -> bool:
    return file.suffix.lower() in SUFFIXES


def video_loader(sample: Path) -> Loader:
    """Video files and folders of them; each video is stored whole by ``store_videos``."""
    return Loader(
        suffixes=SUFFIXES,
        parser=lambda settings, _options: VideoSource(settings),
        sample=sample,
        store=store_videos,
    )
