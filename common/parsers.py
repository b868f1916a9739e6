"""CSV and JSON Lines readers that validate each row with an app's pydantic model.

File-level problems (empty file, header not UTF-8, required columns missing) raise
``InvalidInput`` from ``check`` so the request fails with 422 before a job exists.
Row-level problems (bytes that are not UTF-8, empty or missing fields, bad JSON) become
item errors of the job, naming the line, and the row is skipped.
"""

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from common.errors import InvalidInput
from common.loading import Parsed

T = TypeVar("T", bound=BaseModel)

BOM = b"\xef\xbb\xbf"
HEAD_BYTES = 64 * 1024
NOT_UTF8 = re.compile("[\udc80-\udcff]")


def describe(error: ValidationError) -> str:
    """``answer: String should have at least 1 character`` — one line per problem."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg']}" for e in error.errors()
    )


def file_head(path: Path) -> bytes:
    with path.open("rb") as file:
        head = file.read(HEAD_BYTES)
    if not head.strip():
        raise InvalidInput("the file is empty")
    if b"\x00" in head:
        raise InvalidInput("the file is not UTF-8 text (it contains NUL bytes; UTF-16?)")
    return head.removeprefix(BOM)


def first_line(head: bytes) -> str:
    line = head.split(b"\n", 1)[0]
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInput(f"the file is not UTF-8 text: {error}") from error


def read_text(path: Path) -> str:
    """The whole file as text; invalid bytes survive as surrogates so rows can report them."""
    return path.read_bytes().removeprefix(BOM).decode("utf-8", errors="surrogateescape")


def _validate(model: type[T], item: str, data: Any) -> Parsed[T]:
    try:
        return Parsed(item, value=model.model_validate(data))
    except ValidationError as error:
        return Parsed(item, error=describe(error))


def csv_columns(header: str) -> list[str]:
    """Header cells, stripped and lower-cased: columns are matched case-insensitively."""
    return [c.strip().lower() for c in next(csv.reader([header]), [])]


def csv_rows(path: Path) -> Iterator[Parsed[dict[str, str]]]:
    """Each non-blank row under the header as ``{column: cell}``, or why it is unusable.

    Items are named by the line the row starts on. A row with bytes that are not UTF-8 or
    more cells than the header is an error; a CSV syntax error ends the file.
    """
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    try:
        columns = [c.strip().lower() for c in next(reader)]
    except StopIteration:
        return
    line = reader.line_num
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield Parsed(f"line {line + 1}", error=f"{error}; the rest of the file was not read")
            return
        item, line = f"line {line + 1}", reader.line_num
        if not any(cell.strip() for cell in row):
            continue  # blank lines are not items
        bad = next((c for c, v in zip(columns, row, strict=False) if NOT_UTF8.search(v)), None)
        if bad is not None:
            yield Parsed(item, error=f"{bad}: the text is not valid UTF-8")
            continue
        if len(row) > len(columns):
            yield Parsed(item, error=f"{len(row)} fields but the header has {len(columns)}")
            continue
        yield Parsed(item, value=dict(zip(columns, row, strict=False)))


class CsvParser(Generic[T]):
    """A CSV with a header row; the model's required fields must be columns of it."""

    suffixes = (".csv",)

    def __init__(self, model: type[T]) -> None:
        self.model = model
        self.required = tuple(n for n, f in model.model_fields.items() if f.is_required())

    def check(self, path: Path) -> None:
        columns = csv_columns(first_line(file_head(path)))
        missing = [c for c in self.required if c not in columns]
        if missing:
            raise InvalidInput(
                f"the CSV header has no column {', '.join(map(repr, missing))} (found: "
                f"{', '.join(map(repr, columns)) or 'nothing'}); required: "
                f"{', '.join(self.required)}"
            )

    def count(self, path: Path) -> int:
        return sum(1 for _ in self.parse(path))

    def parse(self, path: Path) -> Iterator[Parsed[T]]:
        for row in csv_rows(path):
            if row.value is None:
                yield Parsed(row.item, error=row.error)
            else:
                yield _validate(self.model, row.item, row.value)


class JsonLinesParser(Generic[T]):
    """One JSON object per line."""

    suffixes = (".jsonl", ".ndjson")

    def __init__(self, model: type[T]) -> None:
        self.model = model

    def check(self, path: Path) -> None:
        head = file_head(path)
        first = next(line for line in head.split(b"\n") if line.strip())
        try:
            value = json.loads(first.decode("utf-8"))
        except UnicodeDecodeError as error:
            raise InvalidInput(f"the file is not UTF-8 text: {error}") from error
        except json.JSONDecodeError:
            if len(first) < HEAD_BYTES - 1:  # a complete first line that is not JSON
                raise InvalidInput(
                    "the first line is not JSON; expected one object per line"
                ) from None
            return
        if not isinstance(value, dict):
            raise InvalidInput("expected one JSON object per line")

    def count(self, path: Path) -> int:
        return sum(1 for _ in self.parse(path))

    def parse(self, path: Path) -> Iterator[Parsed[T]]:
        # Only "\n" ends a line: JSON strings may hold U+2028 and other characters that
        # str.splitlines() would also split on.
        for number, raw in enumerate(read_text(path).split("\n"), start=1):
            line = raw.removesuffix("\r")
            if not line.strip():
                continue
            item = f"line {number}"
            if NOT_UTF8.search(line):
                yield Parsed(item, error="the text is not valid UTF-8")
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as error:
                yield Parsed(item, error=f"not JSON: {error.msg}")
                continue
            if not isinstance(data, dict):
                yield Parsed(item, error="not a JSON object")
                continue
            yield _validate(self.model, item, data)
