"""What a load reads: one file, a folder of files (recursively), or a request's uploads.

Uploads are stored under generated names in a folder of their own, with a manifest that
maps each stored name to the name the client gave, so that items and errors name files as
the user knows them. Folders are walked in a stable order, hidden files skipped and links
never followed.
"""

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePath
from typing import BinaryIO, Generic, Protocol, TypeVar

from common.errors import InvalidInput, UnsupportedMediaType
from common.files import remove_quietly, store_upload
from common.loading import Parsed

T = TypeVar("T")

MANIFEST = ".upload-manifest.json"


def unsupported(filename: str, suffixes: Sequence[str]) -> UnsupportedMediaType:
    suffix = PurePath(filename).suffix.lower()
    kind = suffix or "a file without a suffix"
    return UnsupportedMediaType(
        f"cannot load {kind} ({PurePath(filename).name!r}); supported: {', '.join(suffixes)}"
    )


def store_uploads(
    uploads: Sequence[tuple[str, BinaryIO]],
    folder: Path,
    suffixes: Sequence[str],
    max_bytes: int,
) -> Path:
    """Store ``(client's name, body)`` uploads in a new folder with their manifest (415 for a
    file type the app cannot load, before anything is kept)."""
    for name, _ in uploads:
        if PurePath(name).suffix.lower() not in suffixes:
            raise unsupported(name, suffixes)
    names: dict[str, str] = {}
    try:
        for name, body in uploads:
            stored = store_upload(body, folder, PurePath(name).suffix.lower(), max_bytes)
            names[stored.name] = PurePath(name).name
        (folder / MANIFEST).write_text(json.dumps(names))
    except BaseException:
        remove_quietly(folder)
        raise
    return folder


def manifest(path: Path) -> dict[str, str]:
    file = path / MANIFEST if path.is_dir() else None
    if file is None or not file.is_file():
        return {}
    return {str(k): str(v) for k, v in json.loads(file.read_text()).items()}


def files_below(path: Path) -> Iterator[tuple[Path, str]]:
    """Every file a load of ``path`` reads, in a stable order, with the name to show for it:
    its path below the folder (or its uploaded name); a file alone is named by itself."""
    if not path.is_dir():
        yield path, path.name
        return
    names = manifest(path)
    for folder, subfolders, files in os.walk(path):  # never follows links to folders
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for filename in sorted(f for f in files if not f.startswith(".")):
            file = Path(folder) / filename
            relative = file.relative_to(path).as_posix()
            yield file, names.get(relative, relative)


def unreadable(file: Path) -> str | None:
    """Why a file found in a folder is not read, if it is not."""
    if file.is_symlink():
        return "a symbolic link; links are not followed"
    if not file.is_file():
        return "not a regular file"
    return None


class FileParser(Protocol[T]):
    """Reads one file type (see ``common.parsers``)."""

    @property
    def suffixes(self) -> tuple[str, ...]: ...

    def check(self, path: Path) -> None:
        """Raise InvalidInput for problems with the whole file."""

    def count(self, path: Path) -> int: ...

    def parse(self, path: Path) -> Iterator[Parsed[T]]: ...


class Formats(Generic[T]):
    """One parser per file type, over a file or a folder of them.

    A load of one file reads it with its type's parser, items named as that parser names
    them ("line 3"); a folder or several uploads are read file by file, each item prefixed
    with its file's name ("faq.csv, line 3"), and files of other types are item errors.
    """

    def __init__(self, *parsers: FileParser[T]) -> None:
        self.parsers = parsers
        self.suffixes = tuple(s for p in parsers for s in p.suffixes)

    def _parser(self, file: Path) -> FileParser[T] | None:
        suffix = file.suffix.lower()
        return next((p for p in self.parsers if suffix in p.suffixes), None)

    def _files(self, path: Path) -> tuple[list[tuple[Path, str]], bool]:
        found = list(files_below(path))
        return found, len(found) == 1

    def check(self, path: Path) -> None:
        found, alone = self._files(path)
        if not found:
            raise InvalidInput("the folder holds no files")
        for file, name in found:
            parser = self._parser(file)
            if parser is None or unreadable(file):
                if alone:
                    raise unsupported(name, self.suffixes)
                continue
            try:
                parser.check(file)
            except InvalidInput as error:
                raise InvalidInput(
                    error.message if alone else f"{name}: {error.message}"
                ) from error

    def count(self, path: Path) -> int:
        total = 0
        for file, _ in files_below(path):
            parser = self._parser(file)
            try:
                if parser is None or unreadable(file):
                    raise InvalidInput("not read")
                parser.check(file)
                total += parser.count(file)
            except InvalidInput:
                total += 1  # one item error
        return total

    def parse(self, path: Path) -> Iterator[Parsed[T]]:
        found, alone = self._files(path)
        for file, name in found:
            parser = self._parser(file)
            reason = unreadable(file)
            if parser is None or reason:
                yield Parsed(name, error=reason or f"not one of {', '.join(self.suffixes)}")
                continue
            if not alone:
                try:
                    parser.check(file)
                except InvalidInput as error:
                    yield Parsed(name, error=error.message)
                    continue
            for parsed in parser.parse(file):
                yield (
                    parsed
                    if alone
                    else Parsed(f"{name}, {parsed.item}", parsed.value, parsed.error)
                )
