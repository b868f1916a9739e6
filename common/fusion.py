"""Reciprocal rank fusion: one ranking from several, by rank alone.

Each ranked list gives an item ``1 / (k + rank)`` (ranks from 1); an item's fused score is
the sum over the lists that have it. Scores of different rankers (cosine, bm25, InnoDB's
relevance) are on scales that cannot be added; ranks can. ``k = 60`` is the constant of the
method's paper (Cormack, Clarke and Büttcher, SIGIR 2009) and the common default: it keeps
one list's first place from outweighing an item that both lists rank well.
"""

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

RRF_K = 60

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Fused(Generic[K]):
    key: K
    score: float
    ranks: tuple[int | None, ...]  # the item's rank in each list (from 1), None if absent


def reciprocal_rank_fusion(rankings: Sequence[Sequence[K]], k: int = RRF_K) -> list[Fused[K]]:
    """Every item of ``rankings``, best fused score first; ties go to the better rank in the
    earliest list (so the first list is the tie-breaker), then the next list, and so on."""
    ranks: dict[K, list[int | None]] = {}
    for position, ranking in enumerate(rankings):
        for rank, key in enumerate(ranking, start=1):
            ranks.setdefault(key, [None] * len(rankings))
            if ranks[key][position] is None:  # an item listed twice keeps its better rank
                ranks[key][position] = rank
    fused = [
        Fused(key, sum(1 / (k + r) for r in found if r is not None), tuple(found))
        for key, found in ranks.items()
    ]
    missing = max((len(r) for r in rankings), default=0) + 1
    return sorted(fused, key=lambda f: (-f.score, *(missing if r is None else r for r in f.ranks)))
