"""Where images come from: one file, a zip archive, or a folder (recursively, zips included).

Every file becomes one ``Parsed`` item: the prepared image, or the reason it was skipped
(not an image, truncated, empty, too many pixels, a symlink, an unsafe archive member).
Decoding happens here, on the load's prefetch thread, ahead of the encoder.
"""

from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, Field

from common import InvalidInput, Loader, Parsed
from common.archives import check_zip, zip_member_count, zip_members
from common.images import ImageRejected
from common.sources import files_below, unreadable
from solutions.image_search.items import MAX_LABEL, ImageFile, read_image
from solutions.image_search.settings import ImageSettings

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
ARCHIVE_SUFFIX = ".zip"
# No image file is read if larger: what a bomb member or a stray huge file may cost.
MAX_IMAGE_BYTES = 64 * 1024 * 1024
SUFFIXES = (*IMAGE_SUFFIXES, ARCHIVE_SUFFIX)


class ImageLoadOptions(BaseModel):
    """What one image load may choose."""

    label: str | None = Field(
        None,
        max_length=MAX_LABEL,
        description="Stored with every image instead of the folder it was found in; "
        "filter searches by it.",
        examples=["cats"],
    )


class ImageSource:
    """A parser for image loads; ``label`` overrides the folder each image came from."""

    def __init__(self, settings: ImageSettings, label: str | None = None) -> None:
        self.settings = settings
        self.label = label

    def check(self, path: Path) -> None:
        """Refuse now (422) an empty folder or a file that claims to be a zip but is not."""
        if not any(files_below(path)):
            raise InvalidInput("the folder holds no files")
        for file, name in files_below(path):
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
            for file, _ in files_below(path)
        )

    def parse(self, path: Path) -> Iterator[Parsed[ImageFile]]:
        for file, name in files_below(path):
            if reason := unreadable(file):
                yield Parsed(name, error=reason)
            elif file.stat().st_size > MAX_IMAGE_BYTES and file.suffix.lower() != ARCHIVE_SUFFIX:
                yield Parsed(name, error=f"larger than {MAX_IMAGE_BYTES} bytes")
            elif file.suffix.lower() == ARCHIVE_SUFFIX:
                yield from self._archive(file, name)
            elif file.suffix.lower() not in IMAGE_SUFFIXES:
                yield Parsed(name, error=f"not an image file ({file.suffix or 'no suffix'})")
            else:
                yield self._image(file.read_bytes(), name, folder_of=name)

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


def image_loader(sample: Path) -> Loader:
    """Images, zips of images and folders of both; a load may give every image a label."""

    def parser(settings: ImageSettings, options: ImageLoadOptions) -> ImageSource:
        return ImageSource(settings, options.label)

    return Loader(suffixes=SUFFIXES, parser=parser, options=ImageLoadOptions, sample=sample)
