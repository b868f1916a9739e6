"""Where molecules come from: a SMILES file (.smi), a CSV with a SMILES column, or an SDF.

Every line, row or record becomes one ``Parsed`` item: the molecule, or why it was skipped
(RDKit's reason, naming the line or record). File-level problems (empty, not text, no SMILES
column, not an SDF) raise ``InvalidInput`` from ``check``. Duplicates are kept: the load
pipeline drops them by canonical SMILES.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rdkit import Chem

from common import InvalidInput, Parsed
from common.parsers import NOT_UTF8, csv_columns, csv_rows, file_head, first_line, read_text
from solutions.molecular_search.chem import (
    MAX_TEXT_LENGTH,
    InvalidMolecule,
    canonical_smiles,
    capture_rdkit_errors,
    parse_smiles,
    rdkit_reason,
)

SMILES_SUFFIXES = (".smi", ".smiles")
CSV_SUFFIX = ".csv"
SDF_SUFFIXES = (".sdf", ".sd")
SMILES_COLUMNS = ("smiles", "canonical_smiles")  # the first one present is read
RECORD_END = "$$$$"


@dataclass(frozen=True)
class MoleculeRow:
    """One molecule read from a source.

    ``source_id`` is the identifier the file gives it (an ``id`` column or property, the
    title of a .smi line or SDF record; "" if none); ``name`` is what to show for it (a
    ``name`` column or the SDF title, else the identifier).
    """

    smiles: str  # canonical
    name: str
    source_id: str
    mol: Chem.Mol


@dataclass(frozen=True)
class _Line:
    smiles: str
    name: str
    source_id: str


class MoleculeSource:
    """A parser for molecule loads; the file's suffix says its format."""

    suffixes = (*SMILES_SUFFIXES, CSV_SUFFIX, *SDF_SUFFIXES)

    def __init__(self, max_length: int = MAX_TEXT_LENGTH) -> None:
        self.max_length = max_length  # of a SMILES, read or written from an SDF record

    def check(self, path: Path) -> None:
        suffix = _suffix(path)
        head = file_head(path)
        if suffix == CSV_SUFFIX:
            _smiles_column(csv_columns(first_line(head)))
        elif suffix in SDF_SUFFIXES:
            if b"V2000" not in head and b"V3000" not in head:
                raise InvalidInput("not an SD file: no V2000 or V3000 connection table found")
        else:
            first_line(head)  # refuses text that is not UTF-8

    def count(self, path: Path) -> int:
        """How many items ``parse`` yields, counted without RDKit."""
        if _suffix(path) in SDF_SUFFIXES:
            return _count_records(path)
        return sum(1 for _ in self._lines(path))

    def parse(self, path: Path) -> Iterator[Parsed[MoleculeRow]]:
        if _suffix(path) in SDF_SUFFIXES:
            yield from self._records(path)
            return
        for item, line in self._lines(path):
            if isinstance(line, str):
                yield Parsed(item, error=line)
                continue
            try:
                mol = parse_smiles(line.smiles, max_length=self.max_length)
            except InvalidMolecule as error:
                yield Parsed(item, error=str(error))
                continue
            row = MoleculeRow(canonical_smiles(mol), line.name, line.source_id, mol)
            yield Parsed(item, value=row)

    def _lines(self, path: Path) -> Iterator[tuple[str, _Line | str]]:
        """Each item of a text source: the fields of a molecule, or why the line is unusable."""
        if _suffix(path) == CSV_SUFFIX:
            return _csv_lines(path)
        return _smiles_lines(path)

    def _records(self, path: Path) -> Iterator[Parsed[MoleculeRow]]:
        """Every SD record; a broken one is an item error and reading goes on after it."""
        # RDKit reads blank lines after the last record as one more (broken) record.
        records = _count_records(path)
        with path.open("rb") as file:
            supplier = Chem.ForwardSDMolSupplier(file)
            for number in range(1, records + 1):
                item = f"record {number}"
                try:
                    with capture_rdkit_errors() as capture:
                        mol = next(supplier)
                except StopIteration:
                    return
                except Exception as error:  # the reader itself failed: it cannot go on
                    reason = rdkit_reason(capture.messages) or str(error)
                    yield Parsed(item, error=f"{reason}; the rest of the file was not read")
                    return
                if mol is None:
                    reason = rdkit_reason(capture.messages) or "RDKit could not read the record"
                    yield Parsed(item, error=reason)
                    continue
                yield self._record(item, mol)

    def _record(self, item: str, mol: Chem.Mol) -> Parsed[MoleculeRow]:
        if mol.GetNumAtoms() == 0:
            return Parsed(item, error="the record has no atoms")
        try:
            smiles = canonical_smiles(mol)
            properties = {key.lower(): mol.GetProp(key).strip() for key in mol.GetPropNames()}
            title = mol.GetProp("_Name").strip() if mol.HasProp("_Name") else ""
        except UnicodeDecodeError:
            return Parsed(item, error="the record's text is not valid UTF-8")
        if len(smiles) > self.max_length:
            return Parsed(
                item,
                error=f"the SMILES is {len(smiles)} characters long; the limit is "
                f"{self.max_length}",
            )
        source_id = properties.get("id") or title
        name = title or properties.get("name") or source_id
        return Parsed(item, value=MoleculeRow(smiles, name, source_id, mol))


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in MoleculeSource.suffixes:
        raise InvalidInput(
            f"cannot read {suffix or 'a file without a suffix'}; supported: "
            f"{', '.join(MoleculeSource.suffixes)}"
        )
    return suffix


def _smiles_lines(path: Path) -> Iterator[tuple[str, _Line | str]]:
    """``SMILES [name]`` per line; ``#`` comments, blank lines and a header line are skipped."""
    first = True
    for number, text in enumerate(read_text(path).splitlines(), start=1):
        fields = text.split(maxsplit=1)
        if not fields or fields[0].startswith("#"):
            continue
        if first and fields[0].lower() in SMILES_COLUMNS:
            first = False
            continue  # "smiles name": a header, as some tools write
        first = False
        item = f"line {number}"
        if NOT_UTF8.search(text):
            yield item, "the text is not valid UTF-8"
            continue
        title = fields[1].strip() if len(fields) > 1 else ""
        yield item, _Line(fields[0], title, title)


def _smiles_column(columns: list[str]) -> str:
    column = next((c for c in SMILES_COLUMNS if c in columns), None)
    if column is None:
        raise InvalidInput(
            f"the CSV header has no SMILES column (found: "
            f"{', '.join(map(repr, columns)) or 'nothing'}); expected one of: "
            f"{', '.join(SMILES_COLUMNS)}, optionally with id and name"
        )
    return column


def _csv_lines(path: Path) -> Iterator[tuple[str, _Line | str]]:
    """Rows of a CSV with a header; the SMILES column is required, ``id`` and ``name`` not."""
    smiles_column = _smiles_column(csv_columns(first_line(file_head(path))))
    for row in csv_rows(path):
        if row.value is None:
            yield row.item, row.error or "unreadable row"
            continue
        source_id = row.value.get("id", "").strip()
        name = row.value.get("name", "").strip() or source_id
        yield row.item, _Line(row.value.get(smiles_column, ""), name, source_id)


def _count_records(path: Path) -> int:
    """SD records: ``$$$$`` lines, plus a last record that lacks one."""
    records, pending = 0, False
    with path.open("rb") as file:
        for line in file:
            if line.rstrip() == RECORD_END.encode():
                records, pending = records + 1, False
            elif line.strip():
                pending = True
    return records + pending
