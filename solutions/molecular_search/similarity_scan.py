"""Similarity on Milvus Lite: an exact Tanimoto scan over every stored Morgan fingerprint.

Milvus Lite has no binary vectors, and searching the fingerprints as 2,048-d floats is both
slow and approximate. So on Lite the packed fingerprints are read from SQL into memory (kept
until the collection changes, ``snapshots.py``) and compared with the query in numpy: one
AND and one popcount per 64-bit word, about 32 words a molecule. The result is exactly what
RDKit's ``BulkTanimotoSimilarity`` gives, and what ``BIN_FLAT`` + ``JACCARD`` gives on a
server.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np

from common import Collection
from solutions.molecular_search.chem import PackedBits
from solutions.molecular_search.snapshots import Snapshots


@dataclass
class Fingerprints:
    ids: np.ndarray
    morgan: PackedBits


def _fingerprints(rows: list[tuple[Any, ...]]) -> Fingerprints:
    rows = sorted(rows, key=lambda row: row[0])  # equal scores then come out by id
    nbytes = len(rows[0][1]) if rows else 0
    return Fingerprints(
        ids=np.array([r[0] for r in rows], dtype=np.int64),
        morgan=PackedBits([bytes(r[1]) for r in rows], nbytes),
    )


FINGERPRINTS = Snapshots(["morgan"], _fingerprints)


def most_similar(
    query: bytes, collection: Collection, top_k: int, min_similarity: float = 0.0
) -> list[tuple[float, int]]:
    """The ``top_k`` (Tanimoto, id) pairs of ``collection`` scoring at least
    ``min_similarity``, best first."""
    stored = FINGERPRINTS.get(collection)
    if not len(stored.ids):
        return []
    return best(stored.morgan.tanimoto(query), stored.ids, top_k, min_similarity)


def best(
    scores: np.ndarray, ids: np.ndarray, top_k: int, min_similarity: float = 0.0
) -> list[tuple[float, int]]:
    """The ``top_k`` highest (score, id) pairs at or above ``min_similarity``, best first,
    equal scores by id (``ids`` ascending)."""
    k = min(top_k, len(scores))
    if k == 0:
        return []
    kth = np.partition(scores, len(scores) - k)[len(scores) - k]  # the k-th best score
    candidates = np.flatnonzero(scores >= max(kth, min_similarity))
    ranked = candidates[np.argsort(-scores[candidates], kind="stable")][:k]
    return [(float(scores[i]), int(ids[i])) for i in ranked]
