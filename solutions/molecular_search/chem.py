"""Chemistry for molecular search: parsing, fingerprints, similarity, substructure, drawing.

Pure functions over RDKit molecules and packed bit strings; nothing here does I/O.

Fingerprints are ``bytes`` of ``bits / 8`` bytes, most significant bit first (``np.packbits``),
the layout Milvus takes for a ``BINARY_VECTOR``. Similarity is Tanimoto (Milvus's JACCARD on
bits); ``tanimoto`` computes it exactly so that candidates from an approximate search (the
float fallback on Milvus Lite) can be re-ranked.

RDKit reports why a SMILES is invalid only in its error log, which is process-wide: see
``capture_rdkit_errors``.
"""

import functools
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from rdkit import Chem, rdBase
from rdkit.Chem import rdDepictor, rdFingerprintGenerator
from rdkit.Chem.Draw import rdMolDraw2D

MAX_TEXT_LENGTH = 1000
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_STAMP = re.compile(r"^\[\d\d:\d\d:\d\d\] ?")  # how every rdErrorLog record starts
_CARET = re.compile(r"^[\s~]*\^\s*$")  # "~~^" under the echoed input
_NOISE = ("moving to the beginning of the next molecule",)
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)

# rdBase.CaptureErrorLog swaps the destination of RDKit's one, process-wide error log, so
# captures in two threads would collect each other's messages (seen in practice) and, exited
# out of order, leave the log writing to a freed stream. RDKit calls hold the GIL, so one lock
# around capture + call makes every message belong to the call that caused it.
_RDKIT_LOG = threading.RLock()


class InvalidMolecule(ValueError):
    """Text that is not a molecule (or query); the message is RDKit's own reason."""


@contextmanager
def capture_rdkit_errors() -> Iterator[rdBase.CaptureErrorLog]:
    """Collect what RDKit logs as errors in the block; keep warnings and errors off stderr.

    Every RDKit call whose failure is reported only through the log must run in here; the
    block holds a lock, so keep it to the call itself. Read ``.messages`` after the block and
    pass them to ``rdkit_reason``. (Warnings such as "not removing hydrogen atom without
    neighbors" would otherwise fill a load's stderr; a capture keeps the error log on.)
    """
    with _RDKIT_LOG, rdBase.BlockLogs(), rdBase.CaptureErrorLog() as capture:
        yield capture


def rdkit_reason(log: str) -> str:
    """RDKit's log text as one line: timestamps, echoed input, carets and stack traces removed.

    ``SMILES Parse Error: syntax error while parsing: CC(; check for mistakes around position
    3``, or ``Explicit valence for atom # 1 N, 5, is greater than permitted``.
    """
    stamped = []
    for raw in log.splitlines():
        stamp = _STAMP.match(raw)
        if stamp is not None:  # other lines continue a record: an invariant's stack trace
            stamped.append(raw[stamp.end() :].strip())
    kept: list[str] = []
    for index, line in enumerate(stamped):
        if _CARET.match(line) or (index + 1 < len(stamped) and _CARET.match(stamped[index + 1])):
            continue  # the caret and the echoed input it points into
        line = line.removeprefix("ERROR: ").rstrip(":")
        if line and line not in kept and not any(noise in line for noise in _NOISE):
            kept.append(line)
    if len(kept) > 1:  # "Failed parsing SMILES 'x' for input: 'x'" adds nothing to the others
        kept = [line for line in kept if "Parse Error: Failed parsing" not in line] or kept
    merged: list[str] = []
    prefix = None
    for line in kept:
        head, separator, rest = line.partition(" Parse Error: ")
        if separator and head == prefix:
            merged.append(rest)
            continue
        prefix = head if separator else None
        merged.append(line)
    return "; ".join(merged)


def _checked_text(text: str, max_length: int, what: str) -> str:
    """Refuse, before RDKit sees it, what cannot be one reasonable query."""
    text = text.strip()
    if not text:
        raise InvalidMolecule("empty")
    if len(text) > max_length:
        raise InvalidMolecule(
            f"the {what} is {len(text)} characters long; the limit is {max_length}"
        )
    if _CONTROL.search(text):
        raise InvalidMolecule(f"the {what} contains line breaks or control characters")
    return text


def parse_smiles(text: str, *, max_length: int = MAX_TEXT_LENGTH) -> Chem.Mol:
    """A sanitized molecule, or InvalidMolecule with RDKit's reason.

    Text after whitespace is taken as the molecule's name (or CXSMILES extensions), as
    RDKit does, so a line pasted from a .smi file works.
    """
    return _parse(text, max_length, "SMILES", Chem.MolFromSmiles)


def parse_smarts(text: str, *, max_length: int = MAX_TEXT_LENGTH) -> Chem.Mol:
    """A query molecule for substructure search; SMILES is read as SMARTS, as RDKit does.

    (So ``C`` matches aliphatic carbons only, and hydrogens are not constrained.)
    """
    return _parse(text, max_length, "SMARTS", Chem.MolFromSmarts)


def _parse(text: str, max_length: int, what: str, reader: Callable[[str], Chem.Mol]) -> Chem.Mol:
    text = _checked_text(text, max_length, what)
    with capture_rdkit_errors() as capture:
        mol = reader(text)
    if mol is None:
        raise InvalidMolecule(rdkit_reason(capture.messages) or f"not a valid {what}")
    if mol.GetNumAtoms() == 0:
        raise InvalidMolecule(f"the {what} has no atoms")
    return mol


def canonical_smiles(mol: Chem.Mol) -> str:
    """RDKit's canonical isomeric SMILES: equal for every spelling of one molecule.

    (RDKit stores the output atom order on the molecule, so one molecule must not be written
    from two threads at once; RDKit's Python calls hold the GIL, which ensures that.)
    """
    return str(Chem.MolToSmiles(mol))


def _check_bits(bits: int) -> None:
    if not 64 <= bits <= 8192 or bits % 8:
        raise ValueError(f"fingerprint bits must be a multiple of 8 from 64 to 8192, not {bits}")


@dataclass(frozen=True)
class FingerprintSpec:
    """Morgan fingerprint parameters; the default (radius 2, 2048 bits) is ECFP4."""

    radius: int = 2
    bits: int = 2048

    def __post_init__(self) -> None:
        if not 1 <= self.radius <= 4:
            raise ValueError(f"the Morgan radius must be 1 to 4, not {self.radius}")
        _check_bits(self.bits)

    @property
    def nbytes(self) -> int:
        return self.bits // 8

    @property
    def label(self) -> str:
        """``ecfp4-2048``: names the fingerprint a collection was built with."""
        return f"ecfp{2 * self.radius}-{self.bits}"


DEFAULT_SPEC = FingerprintSpec()


@functools.cache
def _morgan_generator(spec: FingerprintSpec) -> rdFingerprintGenerator.FingerprintGenerator64:
    """One generator per spec: building one is not free.

    Sharing it between threads is safe: ``getFingerprint`` is const and keeps its state per
    call (RDKit's own multithreaded ``GetFingerprints`` shares one); four threads sharing one
    gave exactly the serial fingerprints. No lock is needed.
    """
    return rdFingerprintGenerator.GetMorganGenerator(radius=spec.radius, fpSize=spec.bits)


def morgan_bits(mol: Chem.Mol, spec: FingerprintSpec = DEFAULT_SPEC) -> bytes:
    """The Morgan (ECFP) fingerprint, packed: what similarity search stores and compares."""
    return np.packbits(_morgan_generator(spec).GetFingerprintAsNumPy(mol)).tobytes()


def pattern_bits(mol: Chem.Mol, bits: int = 2048) -> bytes:
    """RDKit's pattern fingerprint, packed: the screen for substructure search.

    Built so that if Q is a substructure of M, every bit of Q is set in M (``screen``); works
    for query molecules from SMARTS too, setting bits only for features it can be sure of.
    """
    _check_bits(bits)
    fingerprint = Chem.PatternFingerprint(mol, fpSize=bits)
    on = np.zeros(bits, dtype=np.uint8)
    on[list(fingerprint.GetOnBits())] = 1
    return np.packbits(on).tobytes()


def _matrix(query: bytes, candidates: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    width = len(query)
    if any(len(candidate) != width for candidate in candidates):
        raise ValueError(f"every fingerprint must be {width} bytes like the query")
    rows = np.frombuffer(b"".join(candidates), dtype=np.uint8).reshape(len(candidates), width)
    return np.frombuffer(query, dtype=np.uint8), rows


def _popcount(rows: np.ndarray) -> np.ndarray:
    """Set bits per row of a uint8 matrix (or of a vector, as a scalar)."""
    counts = np.bitwise_count(rows) if hasattr(np, "bitwise_count") else _POPCOUNT[rows]
    return np.asarray(counts.sum(axis=-1, dtype=np.int64))


def tanimoto(query: bytes, candidates: Sequence[bytes]) -> np.ndarray:
    """Exact Tanimoto similarity of the query to each candidate, as float64.

    Equal to RDKit's ``BulkTanimotoSimilarity``, including 0.0 when both are empty.
    """
    vector, rows = _matrix(query, candidates)
    common = _popcount(rows & vector)
    union = _popcount(vector) + _popcount(rows) - common
    return np.asarray(np.divide(common, union, out=np.zeros(len(rows)), where=union > 0))


def screen(query_pattern: bytes, candidates: Sequence[bytes]) -> np.ndarray:
    """Which candidates have every bit of the query's pattern fingerprint (bool per candidate).

    A False rules the substructure out; a True still needs ``has_substructure``.
    """
    vector, rows = _matrix(query_pattern, candidates)
    return np.asarray(np.all((rows & vector) == vector, axis=1))


def has_substructure(mol: Chem.Mol, query: Chem.Mol) -> bool:
    """Whether ``query`` (from SMILES or SMARTS) occurs in ``mol``, ignoring stereo."""
    return bool(mol.HasSubstructMatch(query, useChirality=False))


def substructure_atoms(mol: Chem.Mol, query: Chem.Mol) -> tuple[int, ...]:
    """The atoms of ``mol`` in the first match of ``query`` (for highlighting); () if none."""
    return tuple(mol.GetSubstructMatch(query, useChirality=False))


def depict_svg(
    mol: Chem.Mol, *, width: int = 300, height: int = 220, highlight: tuple[int, ...] = ()
) -> str:
    """A 2D drawing as an ``<svg>`` element to embed in a page (no XML declaration).

    Highlighted atoms also highlight the bonds between them. The molecule is not changed:
    2D coordinates, when it has none, are computed on a copy.
    """
    if not (16 <= width <= 4096 and 16 <= height <= 4096):
        raise ValueError(f"a drawing must be 16 to 4096 pixels each way, not {width}x{height}")
    atoms = sorted(set(highlight))
    if atoms and not 0 <= atoms[0] <= atoms[-1] < mol.GetNumAtoms():
        raise ValueError(f"highlight names atoms the molecule does not have: {atoms}")
    if mol.GetNumConformers() == 0:
        mol = Chem.Mol(mol)
        rdDepictor.Compute2DCoords(mol)
    chosen = set(atoms)
    bonds = [
        bond.GetIdx()
        for bond in mol.GetBonds()
        if bond.GetBeginAtomIdx() in chosen and bond.GetEndAtomIdx() in chosen
    ]
    drawer = rdMolDraw2D.MolDraw2DSVG(width, height)
    rdMolDraw2D.PrepareAndDrawMolecule(drawer, mol, highlightAtoms=atoms, highlightBonds=bonds)
    drawer.FinishDrawing()
    svg = str(drawer.GetDrawingText())
    return svg[svg.index("<svg") :].strip()


def as_float(bits: bytes) -> np.ndarray:
    """The fingerprint as a 0/1 float32 vector of unit length, for Milvus Lite (no binary).

    Cosine (= inner product) between such vectors is ``common / sqrt(|a| |b|)``, which ranks
    close to Tanimoto ``common / (|a| + |b| - common)``: search a larger pool by cosine, then
    re-rank it with ``tanimoto``. An empty fingerprint stays all zeros.
    """
    vector = np.unpackbits(np.frombuffer(bits, dtype=np.uint8)).astype(np.float32)
    norm = float(np.sqrt(vector.sum()))
    return vector / norm if norm else vector
