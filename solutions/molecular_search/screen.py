"""Substructure search: a screen of pattern fingerprints, then RDKit verifies each candidate.

The patterns and SMILES of a collection are kept in memory until it changes
(``snapshots.py``), so a query costs one screen over packed bits plus the verifications.
"""

import os
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rdkit import Chem

from common import Collection
from solutions.molecular_search import chem
from solutions.molecular_search.items import PATTERN_BITS
from solutions.molecular_search.snapshots import Snapshots

# Parsed molecules kept between queries, per collection. Parsing is most of a verification
# (about 100 µs; the match itself 5-10 µs), but an RDKit molecule takes about 29 KiB: a
# screen that lets most of a large collection through would keep them all (a query that
# passed 1.2 million of the 1.58 million MOSES molecules grew a server past 10 GB). The
# first ones parsed are kept, up to about 290 MiB; the others are parsed for each query.
KEPT_MOLECULES = 10_000


@dataclass
class Screen:
    ids: np.ndarray
    patterns: chem.PackedBits
    smiles: list[str]
    mols: dict[int, Chem.Mol] = field(default_factory=dict)  # parsed, kept for later queries

    def mol(self, index: int) -> Chem.Mol | None:
        mol = self.mols.get(index)
        if mol is None:
            mol = Chem.MolFromSmiles(self.smiles[index])
            if len(self.mols) < KEPT_MOLECULES:
                self.mols[index] = mol
        return mol


def _screen(rows: list[tuple[Any, ...]]) -> Screen:
    return Screen(
        ids=np.array([r[0] for r in rows], dtype=np.int64),
        patterns=chem.PackedBits([bytes(r[1]) for r in rows], PATTERN_BITS // 8),
        smiles=[r[2] for r in rows],
    )


SCREENS = Snapshots(["pattern", "smiles"], _screen)
# RDKit's matching holds the GIL: 32 requests verifying side by side slowed each other to
# half the throughput of one at a time. As many verify at once as there are cores.
VERIFYING = threading.BoundedSemaphore(len(os.sched_getaffinity(0)))


def substructures(
    query: Chem.Mol, collection: Collection, limit: int
) -> tuple[int, list[tuple[int, tuple[int, ...]]], bool]:
    """How many passed the screen; the verified matches (id, atoms); whether ``limit`` cut."""
    screen = SCREENS.get(collection)
    if not len(screen.ids):
        return 0, [], False
    passed = np.flatnonzero(screen.patterns.containing(chem.pattern_bits(query, PATTERN_BITS)))
    found: list[tuple[int, tuple[int, ...]]] = []
    with VERIFYING:
        for index in passed:
            mol = screen.mol(int(index))
            if mol is not None and chem.has_substructure(mol, query):
                found.append((int(screen.ids[index]), chem.substructure_atoms(mol, query)))
                if len(found) >= limit:
                    return len(passed), found, True
    return len(passed), found, False
