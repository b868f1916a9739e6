"""Safe file handling: uploads under generated names, server-side paths only below data roots."""

import contextlib
import errno
import os
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO

from common.errors import Forbidden, InvalidInput, NotFound, PayloadTooLarge

COPY_CHUNK = 1024 * 1024


def store_upload(source: BinaryIO, upload_dir: Path, suffix: str, max_bytes: int) -> Path:
    """Copy an upload to ``upload_dir`` under a random name; the client's name is never used."""
    if suffix and not suffix.replace(".", "").isalnum():
        raise InvalidInput(f"unsupported file suffix {suffix!r}")
    upload_dir.mkdir(parents=True, exist_ok=True)
    target = upload_dir / f"{uuid.uuid4().hex}{suffix}"
    written = 0
    try:
        with target.open("xb") as out:
            while chunk := source.read(COPY_CHUNK):
                written += len(chunk)
                if written > max_bytes:
                    raise PayloadTooLarge(f"the upload is larger than {max_bytes} bytes")
                out.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target


def resolve_under_roots(requested: str, roots: list[Path]) -> Path:
    """Resolve a client-given path to a real file or folder inside one of the data roots.

    Relative paths are taken relative to each root in turn. ``..`` segments, absolute paths
    outside the roots and symlinks that lead outside them are all refused (403).
    """
    if not roots:
        raise Forbidden("server-side loads are disabled: no data roots are configured")
    if "\x00" in requested or not requested.strip():
        raise InvalidInput("the path is empty or contains a NUL byte")
    try:
        return _resolve(requested, roots)
    except OSError as error:  # a name over 255 bytes, a path over 4,096: it cannot exist
        if error.errno == errno.ENAMETOOLONG:
            raise NotFound("no such file or folder: a name in the path is too long") from None
        raise


def _resolve(requested: str, roots: list[Path]) -> Path:
    candidate = Path(requested)
    if ".." in candidate.parts:
        raise Forbidden("the path may not contain '..'")
    real_roots = [root.expanduser().resolve() for root in roots]
    options = [candidate] if candidate.is_absolute() else [root / candidate for root in real_roots]
    inside_a_root = False
    for option in options:
        real = Path(os.path.realpath(option))
        inside = any(real == root or real.is_relative_to(root) for root in real_roots)
        if inside and real.exists():
            return real
        if not inside and candidate.is_absolute():
            raise Forbidden(f"{requested!r} is outside the configured data roots")
        if not inside and (option.exists() or option.is_symlink()):
            raise Forbidden(f"{requested!r} leads outside the configured data roots")
        inside_a_root = inside_a_root or inside
    if candidate.is_absolute() and not inside_a_root:
        raise Forbidden(f"{requested!r} is outside the configured data roots")
    raise NotFound(f"{requested!r} does not exist under the data roots")


def bytes_below(folder: Path) -> int:
    """The size of the files below ``folder`` (0 if it does not exist)."""
    total = 0
    for parent, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):  # removed meanwhile by its finished load
                total += os.lstat(os.path.join(parent, name)).st_size
    return total


def remove_quietly(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
