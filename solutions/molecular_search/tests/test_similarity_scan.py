"""The in-memory Tanimoto scan (Milvus Lite's similarity search) against RDKit, on ~20,000
molecules made from the sample's drugs: the scores, the top 10 with their ties, the screen."""

import csv
from functools import cache

import numpy as np
import pytest
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator

from solutions.molecular_search import chem
from solutions.molecular_search.app import SAMPLE
from solutions.molecular_search.similarity_scan import best

# Each drug with nothing, or a small group, bonded to its first atom: close neighbours and
# many equal scores, as in a real library of analogues.
PREFIXES = ["", "C", "CC", "O", "N", "F", "Cl", "OC"]


@cache
def library() -> list[Chem.Mol]:
    with SAMPLE.open(newline="") as file:
        drugs = [row["smiles"] for row in csv.DictReader(file)]
    molecules: dict[str, Chem.Mol] = {}
    for prefix in PREFIXES:
        for smiles in drugs:
            mol = Chem.MolFromSmiles(prefix + smiles)
            if mol is not None:
                molecules.setdefault(Chem.MolToSmiles(mol), mol)
    return list(molecules.values())


@cache
def fingerprints(radius: int, bits: int) -> tuple[list[DataStructs.ExplicitBitVect], list[bytes]]:
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=bits)
    spec = chem.FingerprintSpec(radius, bits)
    mols = library()
    return [generator.GetFingerprint(m) for m in mols], [chem.morgan_bits(m, spec) for m in mols]


def test_the_library_is_large_and_full_of_ties() -> None:
    assert len(library()) > 18_000
    reference, _ = fingerprints(2, 2048)
    scores = DataStructs.BulkTanimotoSimilarity(reference[0], reference)
    assert len(set(scores)) < len(scores) / 10


@pytest.mark.parametrize(("radius", "bits"), [(2, 2048), (3, 1024), (2, 72)])
def test_scan_equals_rdkit_bulk_tanimoto(radius: int, bits: int) -> None:
    """72 bits is 9 bytes: the last 64-bit word is padded."""
    reference, packed = fingerprints(radius, bits)
    scan = chem.PackedBits(packed, bits // 8)
    assert len(scan) == len(packed)
    for index in range(0, len(packed), len(packed) // 25):
        expected = np.array(DataStructs.BulkTanimotoSimilarity(reference[index], reference))
        np.testing.assert_array_equal(scan.tanimoto(packed[index]), expected)


def test_top_ten_with_ties_equals_a_sort_of_rdkits_scores() -> None:
    reference, packed = fingerprints(2, 2048)
    scan = chem.PackedBits(packed, 256)
    ids = np.arange(len(packed), dtype=np.int64) * 7 + 3  # any ascending ids
    tied_at_the_cut = 0
    for index in range(0, len(packed), 200):
        scores = DataStructs.BulkTanimotoSimilarity(reference[index], reference)
        expected = sorted(zip(scores, ids.tolist(), strict=True), key=lambda p: (-p[0], p[1]))
        assert best(scan.tanimoto(packed[index]), ids, 10) == expected[:10]
        tied_at_the_cut += expected[9][0] == expected[10][0]
        above = [p for p in expected if p[0] >= 0.5][:100]
        assert best(scan.tanimoto(packed[index]), ids, 100, 0.5) == above
    assert tied_at_the_cut >= 10  # the ties are really tested


def test_best_of_few() -> None:
    ids = np.array([1, 2, 3])
    assert best(np.array([0.2, 0.9, 0.2]), ids, 10) == [(0.9, 2), (0.2, 1), (0.2, 3)]
    assert best(np.array([0.2, 0.9, 0.2]), ids, 10, 0.5) == [(0.9, 2)]
    assert best(np.array([]), np.array([], dtype=np.int64), 10) == []


def test_scan_without_numpys_bitwise_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """numpy 1.26 (allowed by the project) has no ``bitwise_count``: a table is used."""
    reference, packed = fingerprints(2, 72)
    counted = chem.PackedBits(packed[:500], 9).tanimoto(packed[0])
    monkeypatch.delattr(np, "bitwise_count")
    tabled = chem.PackedBits(packed[:500], 9)
    np.testing.assert_array_equal(tabled.tanimoto(packed[0]), counted)
    expected = DataStructs.BulkTanimotoSimilarity(reference[0], reference[:500])
    np.testing.assert_array_equal(counted, expected)


def test_screen_keeps_exactly_the_supersets() -> None:
    random = np.random.default_rng(7)
    rows = random.random((3000, 130)) < 0.3  # 130 bits: the last word is padded
    fingerprints = [np.packbits(row).tobytes() for row in rows]
    screen = chem.PackedBits(fingerprints, len(fingerprints[0]))
    for index in range(0, 3000, 300):
        query = rows[index] & (random.random(130) < 0.3)
        expected = np.all(rows | ~query, axis=1)
        np.testing.assert_array_equal(screen.containing(np.packbits(query).tobytes()), expected)
    assert screen.containing(bytes(17)).all()


def test_widths_are_checked() -> None:
    with pytest.raises(ValueError, match="9 bytes"):
        chem.PackedBits([bytes(9), bytes(8)], 9)
    with pytest.raises(ValueError, match="9 bytes"):
        chem.PackedBits([bytes(9)], 9).tanimoto(bytes(8))
