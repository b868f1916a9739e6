"""Files that belong to items — originals, thumbnails — kept on disk next to the two stores.

A file is named only by its collection and item id, never by anything a client sent:
``<root>/<collection>/<2 hex digits>/<id>.<kind>``. ``Collection`` writes an item's files
before its SQL row and deletes them after, and sweeps files without a row on recovery, so
a served file always belongs to a stored item.
"""

import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

# "playable": a copy a browser can play, for originals it cannot (a video in AVI, say).
KINDS = ("original", "thumbnail", "playable")


class MediaStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _folder(self, physical: str) -> Path:
        return self.root / physical

    def path(self, physical: str, item_id: int, kind: str) -> Path:
        if kind not in KINDS:
            raise ValueError(f"unknown media kind {kind!r}")
        return self._folder(physical) / f"{item_id & 0xFF:02x}" / f"{item_id}.{kind}"

    def write(self, physical: str, item_id: int, kind: str, data: bytes | Path) -> None:
        """Write atomically (bytes, or a copy of a file): a reader never sees half a file."""
        target = self.path(physical, item_id, kind)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
        if isinstance(data, Path):
            shutil.copyfile(data, temporary)
        else:
            temporary.write_bytes(data)
        os.replace(temporary, target)

    def delete(self, physical: str, item_ids: Iterable[int]) -> None:
        for item_id in item_ids:
            for kind in KINDS:
                self.path(physical, item_id, kind).unlink(missing_ok=True)

    def item_ids(self, physical: str) -> set[int]:
        folder = self._folder(physical)
        if not folder.is_dir():
            return set()
        return {int(p.name.split(".", 1)[0]) for p in folder.glob("*/*") if p.name[0].isdigit()}

    def remove_partial_writes(self, physical: str) -> None:
        """Temporary files a crash left half written (``.<name>.<random>``)."""
        folder = self._folder(physical)
        if folder.is_dir():
            for partial in folder.glob("*/.*"):
                partial.unlink(missing_ok=True)

    def drop(self, physical: str) -> None:
        shutil.rmtree(self._folder(physical), ignore_errors=True)
