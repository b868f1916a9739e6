"""Reading uploaded zip archives member by member, in memory, without trusting the archive.

Nothing is extracted to disk, so a member's name is only ever a label; names that would
escape a folder on extraction (``../x``, ``/x``) are still refused, because an app may show
or store them and because they are a sign of a hostile archive. Every byte a member yields
is counted against one budget for the whole archive while it is decompressed, so a zip bomb
costs at most that budget, whatever sizes its headers declare.

``check_zip`` raises ``InvalidInput`` for problems with the whole file (422 before a job
exists); ``zip_members`` turns problems with one member into an item error and goes on.
"""

import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from common.errors import InvalidInput
from common.loading import Parsed

READ_CHUNK = 256 * 1024
# zipfile parses the whole central directory into ZipInfo objects as it opens an archive
# (about 5x its size in memory: 200k entries take ~100 MB and ~1 s), so its size is checked
# from the end record first. 8 MiB is some 80k entries with ordinary names.
MAX_DIRECTORY_BYTES = 8 * 1024 * 1024
# Python's zipfile bounds the output of each read only for these two methods; bzip2 and
# LZMA members decompress a whole compressed chunk at once: reading 1 KB of a 445-byte
# bzip2 member of 400 MB of zeros takes 800 MB and 1.5 s, before any budget can step in.
READABLE_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
METHOD_NAMES = {zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "LZMA"}
# What reading a damaged member raises: bad CRC / header (BadZipFile), a broken deflate
# stream (zlib.error), compressed data cut short (EOFError), an unknown method.
MEMBER_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError)

_END = struct.Struct("<4s4H2LH")  # end of central directory record
_END_SIGNATURE = b"PK\x05\x06"
_LOCATOR = struct.Struct("<4sLQL")  # zip64 end of central directory locator
_LOCATOR_SIGNATURE = b"PK\x06\x07"
_END64 = struct.Struct("<4sQ2H2L4Q")  # zip64 end of central directory record
_END64_SIGNATURE = b"PK\x06\x06"
_MAX_COMMENT = 0xFFFF  # bytes of archive comment after the end record


def _directory_size(file: BinaryIO) -> int:
    """The central directory's size as zipfile will read it, found the way zipfile finds it."""
    file.seek(0, 2)
    size = file.tell()
    if size == 0:
        raise InvalidInput("the file is empty")
    start = max(0, size - _END.size - _MAX_COMMENT - 1)
    file.seek(start)
    tail = file.read()
    at = len(tail) - _END.size
    if not (tail[at:].startswith(_END_SIGNATURE) and tail.endswith(b"\0\0")):
        at = tail.rfind(_END_SIGNATURE)  # there is a comment after the end record
    if at < 0 or len(tail) - at < _END.size:
        raise InvalidInput("the file is not a zip archive")
    directory_size: int = _END.unpack_from(tail, at)[5]
    end = start + at
    if end < _LOCATOR.size + _END64.size:
        return directory_size
    file.seek(end - _LOCATOR.size - _END64.size)  # zip64 records sit right before the end
    records = file.read(_END64.size + _LOCATOR.size)
    if records[_END64.size :].startswith(_LOCATOR_SIGNATURE) and records.startswith(
        _END64_SIGNATURE
    ):
        directory_size = _END64.unpack_from(records)[8]
    return directory_size


def _open(path: Path, max_directory_bytes: int) -> zipfile.ZipFile:
    """The archive with its directory parsed; an OSError here is the server's, not the input's."""
    with path.open("rb") as file:
        directory = _directory_size(file)
    if directory > max_directory_bytes:
        raise InvalidInput(
            f"the zip archive lists too many files ({directory} bytes of directory; "
            f"at most {max_directory_bytes})"
        )
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, ValueError, struct.error) as error:
        raise InvalidInput(f"the file is not a readable zip archive: {error}") from error


def _parts(name: str) -> tuple[str, ...]:
    """Path segments, splitting on backslashes too: Windows tools extract ``..\\x`` as ``../x``."""
    return tuple(p for p in name.replace("\\", "/").split("/") if p)


def _escape(name: str, parts: tuple[str, ...]) -> str | None:
    """Why a name would land outside the target folder on extraction (zip slip), or None."""
    if name.startswith(("/", "\\")) or (name[:1].isalpha() and name[1:2] == ":"):
        return "refused: an absolute path (zip slip)"
    if ".." in parts:
        return "refused: the name contains '..' (zip slip)"
    return None


def _silently_skipped(parts: tuple[str, ...]) -> bool:
    """The clutter archivers add: ``__MACOSX/`` resource forks, dotfiles and dot folders."""
    return not parts or parts[0] == "__MACOSX" or any(p.startswith(".") and p != "." for p in parts)


def _refusal(info: zipfile.ZipInfo) -> str | None:
    """Why a member with a safe name is still not read, or None."""
    mode = info.external_attr >> 16  # Unix mode bits; 0 for archives made on Windows
    if stat.S_ISLNK(mode):
        return "refused: a symbolic link, not a file"
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
        return "refused: not a regular file"
    if info.flag_bits & 0x1:
        return "refused: the file is encrypted"
    if info.compress_type not in READABLE_METHODS:
        method = METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
        return f"refused: compressed with {method}; only stored or deflated files are read"
    return None


def _unsupported(filename: str, accepted: tuple[str, ...]) -> str | None:
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix in accepted:
        return None
    return f"cannot load {suffix or 'a file without a suffix'}; supported: {', '.join(accepted)}"


def _read_capped(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes | None:
    """The member's bytes, or None as soon as they exceed ``budget`` (its header may lie)."""
    chunks: list[bytes] = []
    size = 0
    with archive.open(info) as member:
        while chunk := member.read(min(READ_CHUNK, budget - size + 1)):
            size += len(chunk)
            if size > budget:
                return None
            chunks.append(chunk)
    return b"".join(chunks)


def check_zip(path: Path, *, max_directory_bytes: int = MAX_DIRECTORY_BYTES) -> None:
    """Raise ``InvalidInput`` unless the file is a zip archive that lists at least one file.

    Reads only the directory, not the members, so it is cheap enough for request time.
    """
    with _open(path, max_directory_bytes) as archive:
        names = [
            info.filename
            for info in archive.infolist()
            if not info.is_dir() and not _silently_skipped(_parts(info.filename))
        ]
    if not names:
        raise InvalidInput("the zip archive holds no files")


def zip_member_count(path: Path, *, max_directory_bytes: int = MAX_DIRECTORY_BYTES) -> int:
    """How many items ``zip_members`` will yield at most (folders and clutter left out)."""
    try:
        with _open(path, max_directory_bytes) as archive:
            return sum(
                1
                for info in archive.infolist()
                if not info.is_dir()
                and (
                    _escape(info.filename, _parts(info.filename))
                    or not _silently_skipped(_parts(info.filename))
                )
            )
    except InvalidInput:
        return 1  # reported as one error by zip_members


def zip_members(
    path: Path,
    *,
    max_total_bytes: int,
    max_members: int,
    suffixes: tuple[str, ...],
    max_member_bytes: int | None = None,
    max_directory_bytes: int = MAX_DIRECTORY_BYTES,
) -> Iterator[Parsed[bytes]]:
    """Yield each file's bytes under its name in the archive, or why it was not read.

    A member larger than ``max_member_bytes`` is one item error (reading stops at the cap,
    so a bomb member costs at most that much memory); the next members are still read.

    Folders, ``__MACOSX/`` and dotfiles are skipped without a word. Each other member counts
    towards ``max_members``; once that many were yielded, or the bytes read so far would pass
    ``max_total_bytes``, one last error names the member where reading stopped.
    Raises ``InvalidInput`` (like ``check_zip``) if the file is not a readable archive.
    """
    accepted = tuple(s.lower() for s in suffixes)
    remaining = max_total_bytes
    count = 0
    with _open(path, max_directory_bytes) as archive:
        for info in archive.infolist():
            name, parts = info.filename, _parts(info.filename)
            escape = None if info.is_dir() else _escape(name, parts)
            if info.is_dir() or (escape is None and _silently_skipped(parts)):
                continue
            if count >= max_members:
                yield Parsed(
                    name,
                    error=f"the archive holds more than {max_members} files; "
                    "this one and the rest were not read",
                )
                return
            count += 1
            refusal = escape or _refusal(info) or _unsupported(parts[-1], accepted)
            if refusal is not None:
                yield Parsed(name, error=refusal)
                continue
            member_cap = min(remaining, max_member_bytes or remaining)
            try:
                data = _read_capped(archive, info, member_cap)
            except MEMBER_ERRORS as error:
                yield Parsed(name, error=f"the file is corrupt in the archive: {error}")
                continue
            if data is None and member_cap < remaining:
                yield Parsed(name, error=f"the file unpacks to more than {member_cap} bytes")
                continue
            if data is None:
                yield Parsed(
                    name,
                    error=f"the archive unpacks to more than {max_total_bytes} bytes; "
                    "this file and the rest were not read",
                )
                return
            remaining -= len(data)
            yield Parsed(name, value=data)
