"""A large load's vectors as the files Milvus's bulk import reads: NumPy, one per field.

Batched inserts send every row through Milvus's proxy and message stream; a bulk import
hands Milvus files it turns into sealed segments directly. The files are written in parts
of about ``PART_BYTES`` (so a load of millions never holds them all in memory), each part
a folder with one ``<field>.npy`` per field of the collection, at a path the Milvus server
reads (``SEARCH_BULK_IMPORT_DIR``).
"""

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from common.vector_store import ScalarKind

PART_BYTES = 256 * 1024 * 1024
SCALAR_TYPES: dict[ScalarKind, type] = {"int64": np.int64, "varchar": np.str_}


class ImportFiles:
    """The rows of one bulk import, written to ``folder`` part by part."""

    def __init__(
        self,
        folder: Path,
        kind: str,
        dim: int,
        filter_fields: Mapping[str, ScalarKind],
        part_bytes: int = PART_BYTES,
    ) -> None:
        self.folder = folder
        self.kind = kind
        self.filter_fields = dict(filter_fields)
        row_bytes = dim // 8 if kind == "binary" else 4 * dim
        self.part_rows = max(1, part_bytes // row_bytes)
        self.parts: list[list[Path]] = []
        self._columns: dict[str, list[Any]] = self._empty()
        folder.mkdir(parents=True)

    def add(self, rows: Sequence[tuple[int, Any, dict[str, Any]]]) -> None:
        """Add rows given as (id, vector, the record's filter fields)."""
        for item_id, vector, fields in rows:
            self._columns["id"].append(item_id)
            self._columns["vector"].append(vector)
            for name in self.filter_fields:
                self._columns[name].append(fields[name])
            if len(self._columns["id"]) >= self.part_rows:
                self._write_part()

    def finish(self) -> list[list[Path]]:
        """Write what is left; every part's files."""
        if self._columns["id"]:
            self._write_part()
        return self.parts

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def _empty(self) -> dict[str, list[Any]]:
        return {name: [] for name in ["id", "vector", *self.filter_fields]}

    def _write_part(self) -> None:
        part = self.folder / f"part-{len(self.parts)}"
        part.mkdir()
        columns, self._columns = self._columns, self._empty()
        arrays = {
            "id": np.asarray(columns.pop("id"), dtype=np.int64),
            "vector": self._vectors(columns.pop("vector")),
            **{
                name: np.asarray(values, dtype=SCALAR_TYPES[self.filter_fields[name]])
                for name, values in columns.items()
            },
        }
        files = []
        for name, array in arrays.items():
            path = part / f"{name}.npy"
            np.save(path, array)
            files.append(path)
        self.parts.append(files)

    def _vectors(self, vectors: list[Any]) -> np.ndarray:
        if self.kind == "binary":  # packed bits, one row of bytes per vector
            packed = b"".join(bytes(vector) for vector in vectors)
            return np.frombuffer(packed, dtype=np.uint8).reshape(len(vectors), -1)
        return np.asarray(vectors, dtype=np.float32)
