"""Substructure search: a screen of pattern fingerprints, then RDKit verifies each candidate.

The patterns and SMILES of a collection are read from SQL once and kept until the
collection changes (its version), so a query costs one screen over packed bits plus the
verifications.
"""

import threading
from dataclasses import dataclass

import numpy as np
from rdkit import Chem

from common import Collection
from solutions.molecular_search import chem
from solutions.molecular_search.items import PATTERN_BITS


@dataclass
class Screened:
    collection: Collection  # this very object: a dropped and re-created one is another
    version: int
    ids: np.ndarray
    patterns: list[bytes]
    smiles: list[str]
    mols: dict[int, Chem.Mol]  # parsed on first use, kept for later queries


class Screens:
    """What the substructure screen needs of a collection, kept until the collection changes."""

    def __init__(self) -> None:
        self._cache: dict[str, Screened] = {}
        self._lock = threading.Lock()

    def get(self, collection: Collection) -> Screened:
        with self._lock:
            cached = self._cache.get(collection.physical)
            fresh = (
                cached is not None
                and cached.collection is collection
                and cached.version == collection.version
            )
            if cached is None or not fresh:
                rows = collection.scan(["pattern", "smiles"])
                cached = Screened(
                    collection=collection,
                    version=collection.version,
                    ids=np.array([r[0] for r in rows], dtype=np.int64),
                    patterns=[bytes(r[1]) for r in rows],
                    smiles=[r[2] for r in rows],
                    mols={},
                )
                self._cache[collection.physical] = cached
            return cached

    @staticmethod
    def mol(screened: Screened, index: int) -> Chem.Mol | None:
        mol = screened.mols.get(index)
        if mol is None:
            mol = screened.mols[index] = Chem.MolFromSmiles(screened.smiles[index])
        return mol


SCREENS = Screens()


def substructures(
    query: Chem.Mol, collection: Collection, limit: int
) -> tuple[int, list[tuple[int, tuple[int, ...]]], bool]:
    """How many passed the screen; the verified matches (id, atoms); whether ``limit`` cut."""
    screened = SCREENS.get(collection)
    if not len(screened.ids):
        return 0, [], False
    wanted = chem.pattern_bits(query, PATTERN_BITS)
    passed = np.flatnonzero(chem.screen(wanted, screened.patterns))
    found: list[tuple[int, tuple[int, ...]]] = []
    for index in passed:
        mol = SCREENS.mol(screened, int(index))
        if mol is not None and chem.has_substructure(mol, query):
            found.append((int(screened.ids[index]), chem.substructure_atoms(mol, query)))
            if len(found) >= limit:
                return len(passed), found, True
    return len(passed), found, False
