"""Chemistry for molecular search: parsing, fingerprints, similarity, substructure, drawing.

Pure functions over RDKit molecules and packed bit strings; nothing here does I/O.

Fingerprints are ``bytes`` of ``bits / 8`` bytes, most significant bit first (``np.packbits``),
the layout Milvus takes for a ``BINARY_VECTOR``. Similarity is Tanimoto (Milvus's JACCARD on
bits); ``PackedBits`` computes it exactly for a whole collection at once (Milvus Lite, which
has no binary vectors, is searched that way).

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


class PackedBits:
    """Fingerprints of one length, stored word-major: one row of 64-bit words per bit range,
    one column per fingerprint, with each fingerprint's bit count.

    What whole-collection scans run on: Tanimoto to a query, and the substructure screen.
    Word-major, a query costs one AND and one popcount over a contiguous row for each of its
    non-zero words (a Morgan query sets ~45 bits of 2,048: about 25 of 32 words), and a word
    where the query has no bit is skipped.
    """

    def __init__(self, fingerprints: Sequence[bytes], nbytes: int) -> None:
        if any(len(fingerprint) != nbytes for fingerprint in fingerprints):
            raise ValueError(f"every fingerprint must be {nbytes} bytes")
        self.nbytes = nbytes
        self.words = np.ascontiguousarray(_as_words(b"".join(fingerprints), nbytes).T)
        self.counts = np.zeros(len(fingerprints), dtype=np.int64)
        for row in self.words:
            self.counts += _popcount(row)

    def __len__(self) -> int:
        return int(self.words.shape[1])

    def _query(self, query: bytes) -> np.ndarray:
        if len(query) != self.nbytes:
            raise ValueError(f"the query must be {self.nbytes} bytes like the fingerprints")
        return np.asarray(_as_words(query, self.nbytes)[0])

    def tanimoto(self, query: bytes) -> np.ndarray:
        """Exact Tanimoto of the query to every fingerprint, as float64 (0.0 when both are
        empty), equal to RDKit's ``BulkTanimotoSimilarity``."""
        vector = self._query(query)
        common = np.zeros(len(self), dtype=np.uint16)  # fingerprints of up to 65,535 bits
        for word in np.flatnonzero(vector):
            common += _popcount(self.words[word] & vector[word])
        union = self.counts + int(_popcount(vector).sum()) - common
        return np.asarray(np.divide(common, union, out=np.zeros(len(self)), where=union > 0))

    def containing(self, query: bytes) -> np.ndarray:
        """Which fingerprints have every bit of the query set (bool per fingerprint)."""
        vector = self._query(query)
        passed = np.ones(len(self), dtype=bool)
        for word in np.flatnonzero(vector):
            passed &= (self.words[word] & vector[word]) == vector[word]
        return passed


def _as_words(packed: bytes, nbytes: int) -> np.ndarray:
    """Fingerprints of ``nbytes`` each, one per row of uint64 words, zero-padded to whole
    words."""
    rows = len(packed) // nbytes if nbytes else 0
    words = -(-nbytes // 8)
    matrix = np.zeros((rows, words * 8), dtype=np.uint8)
    matrix[:, :nbytes] = np.frombuffer(packed, dtype=np.uint8).reshape(rows, nbytes)
    return matrix.view(np.uint64)


def _popcount(words: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 word."""
    if hasattr(np, "bitwise_count"):  # numpy 2
        return np.asarray(np.bitwise_count(words))
    as_bytes = _POPCOUNT[words.view(np.uint8)]
    return np.asarray(as_bytes.reshape(*words.shape, 8).sum(axis=-1, dtype=np.uint8))


def tanimoto(query: bytes, candidates: Sequence[bytes]) -> np.ndarray:
    """Exact Tanimoto similarity of the query to each candidate, as float64.

    Equal to RDKit's ``BulkTanimotoSimilarity``, including 0.0 when both are empty.
    """
    return PackedBits(candidates, len(query)).tanimoto(query)


def screen(query_pattern: bytes, candidates: Sequence[bytes]) -> np.ndarray:
    """Which candidates have every bit of the query's pattern fingerprint (bool per candidate).

    A False rules the substructure out; a True still needs ``has_substructure``.
    """
    return PackedBits(candidates, len(query_pattern)).containing(query_pattern)


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
