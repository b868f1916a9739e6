"""Where images come from: one file, a zip archive, or a folder (recursively, zips included).

Every file becomes one ``Parsed`` item: the prepared image, or the reason it was skipped
(not an image, truncated, empty, too many pixels, a symlink, an unsafe archive member).
Decoding happens here, on the load's prefetch thread, ahead of the encoder.
"""

import json
import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from common.archives import check_zip, zip_member_count, zip_members
from common.errors import InvalidInput
from common.loading import Parsed
from solutions.image_search.images import ImageRejected
from solutions.image_search.items import ImageFile, read_image
from solutions.image_search.settings import ImageSettings

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
ARCHIVE_SUFFIX = ".zip"
# No image file is read if larger: what a bomb member or a stray huge file may cost.
MAX_IMAGE_BYTES = 64 * 1024 * 1024
# Written by the upload route next to the files it stored under generated names.
MANIFEST = ".upload-manifest.json"


class ImageSource:
    """A parser for image loads; ``label`` overrides the folder each image came from."""

    suffixes = (*IMAGE_SUFFIXES, ARCHIVE_SUFFIX)
    media_types = (
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/bmp",
        "image/gif",
        "application/zip",
    )

    def __init__(self, settings: ImageSettings, label: str | None = None) -> None:
        self.settings = settings
        self.label = label

    def check(self, path: Path) -> None:
        """Refuse now (422) an empty folder or a file that claims to be a zip but is not."""
        if not any(self._files(path)):
            raise InvalidInput("the folder holds no files")
        for file, name in self._files(path, _manifest(path)):
            if file.suffix.lower() == ARCHIVE_SUFFIX and file.is_file() and not file.is_symlink():
                try:
                    check_zip(file)
                except InvalidInput as error:
                    raise InvalidInput(f"{name}: {error.message}") from error

    def count(self, path: Path) -> int:
        return sum(
            zip_member_count(file)
            if file.suffix.lower() == ARCHIVE_SUFFIX and file.is_file() and not file.is_symlink()
            else 1
            for file, _ in self._files(path)
        )

    def parse(self, path: Path) -> Iterator[Parsed[ImageFile]]:
        names = _manifest(path)
        for file, name in self._files(path, names):
            if file.is_symlink():
                yield Parsed(name, error="a symbolic link; links are not followed")
            elif not file.is_file():
                yield Parsed(name, error="not a regular file")
            elif file.stat().st_size > MAX_IMAGE_BYTES and file.suffix.lower() != ARCHIVE_SUFFIX:
                yield Parsed(name, error=f"larger than {MAX_IMAGE_BYTES} bytes")
            elif file.suffix.lower() == ARCHIVE_SUFFIX:
                yield from self._archive(file, name)
            elif file.suffix.lower() not in IMAGE_SUFFIXES:
                yield Parsed(name, error=f"not an image file ({file.suffix or 'no suffix'})")
            else:
                yield self._image(file.read_bytes(), name, folder_of=name)

    def _files(self, path: Path, names: dict[str, str] | None = None) -> Iterator[tuple[Path, str]]:
        """Files below ``path`` in a stable order with the names to show for them."""
        if not path.is_dir():
            yield path, path.name
            return
        for folder, subfolders, files in os.walk(path):  # never follows links to folders
            subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
            for filename in sorted(f for f in files if not f.startswith(".")):
                file = Path(folder) / filename
                relative = file.relative_to(path).as_posix()
                yield file, (names or {}).get(relative, relative)

    def _archive(self, archive: Path, archive_name: str) -> Iterator[Parsed[ImageFile]]:
        try:
            members = zip_members(
                archive,
                max_total_bytes=self.settings.image_archive_max_bytes,
                max_members=self.settings.image_archive_max_files,
                suffixes=IMAGE_SUFFIXES,
                max_member_bytes=MAX_IMAGE_BYTES,
            )
            for member in members:
                name = f"{archive_name}/{member.item}"
                if member.value is None:
                    yield Parsed(name, error=member.error)
                else:
                    yield self._image(member.value, name, folder_of=member.item)
        except InvalidInput as error:
            yield Parsed(archive_name, error=error.message)

    def _image(self, data: bytes, name: str, *, folder_of: str) -> Parsed[ImageFile]:
        folder = str(PurePosixPath(folder_of).parent)
        label = self.label if self.label is not None else ("" if folder == "." else folder)
        try:
            return Parsed(
                name, value=read_image(data, name, label, max_pixels=self.settings.image_max_pixels)
            )
        except ImageRejected as error:
            return Parsed(name, error=str(error))


def _manifest(path: Path) -> dict[str, str]:
    manifest = path / MANIFEST if path.is_dir() else None
    if manifest is None or not manifest.is_file():
        return {}
    return {str(k): str(v) for k, v in json.loads(manifest.read_text()).items()}
