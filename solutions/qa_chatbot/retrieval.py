"""How the QA chatbot finds candidates: by meaning, by words, or both fused.

* ``dense``: the stored questions closest in meaning (cosine, Milvus);
* ``lexical``: the stored pairs whose words best match (bm25 / InnoDB full-text, SQL);
* ``hybrid``: both lists, fused. By default (``relative``) by score: each candidate's cosine
  similarity scaled to 0-1 over the candidates, and its word-match score as a fraction of
  the best one's (0 if not a word match), weighted ``1 - LEXICAL_WEIGHT`` and
  ``LEXICAL_WEIGHT``. Or (``rrf``) by rank alone: reciprocal rank fusion, k = 60
  (``common.fusion``). Measured on the evaluation sets (``benchmarks/qa_eval.py``), rank
  fusion ranked the right pair first less often than dense search alone (a paraphrase's
  pair is often missing from the word matches, and RRF then prefers pairs both lists
  found); the weighted scores ranked it first more often, on the tuning and held-out halves.

Every candidate also gets its cosine similarity to the question, whichever list found it
(a pair only the lexical list found has its stored vector compared), because the rule that
decides whether to answer (``confidence.decide``) reads similarity in every mode.
"""

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from common import Collection, Encoder, InvalidInput, Match
from common.fusion import RRF_K, reciprocal_rank_fusion
from common.lexical import terms

Mode = Literal["dense", "lexical", "hybrid"]
Fusion = Literal["relative", "rrf"]
# The word match's share of a hybrid score: chosen on the tuning halves of the evaluation
# sets (0 to 0.4 in steps of 0.05), see benchmarks/README.md.
LEXICAL_WEIGHT = 0.15


@dataclass(frozen=True)
class Candidate:
    """A stored pair found for a question, and where it came from."""

    match: Match  # its id, its record; ``score`` is its cosine similarity to the question
    dense_rank: int | None = None
    lexical_rank: int | None = None
    lexical_score: float | None = None
    fused_score: float | None = None


def retrieve(
    collection: Collection,
    encoder: Encoder,
    question: str,
    mode: Mode,
    depth: int,
    fusion: Fusion = "relative",
) -> list[Candidate]:
    """The candidates of ``mode``, best first: each ranking gives up to ``depth``, and a
    fused list is cut to ``depth``."""
    if mode == "lexical" and not terms(question):
        raise InvalidInput("the question has no words to search for (mode lexical)")
    vector = np.asarray(encoder.encode([question]), dtype=np.float32)[0]
    dense = collection.search(vector[None, :], depth)[0] if mode != "lexical" else []
    words = (
        collection.lexical_search(question, depth) if mode != "dense" and terms(question) else []
    )
    if mode == "dense":
        return [Candidate(m, dense_rank=rank) for rank, m in enumerate(dense, start=1)]
    found = {m.id: m for m in dense}
    others = [m.id for m in words if m.id not in found]
    similarity = {m.id: m.score for m in dense} | _similarities(collection, vector, others)
    found |= {m.id: Match(m.id, similarity[m.id], m.record) for m in words if m.id in similarity}
    dense_rank = {m.id: rank for rank, m in enumerate(dense, start=1)}
    lexical = {m.id: (rank, m.score) for rank, m in enumerate(words, start=1) if m.id in found}

    def candidate(item_id: int, fused: float | None = None) -> Candidate:
        rank, score = lexical.get(item_id, (None, None))
        return Candidate(found[item_id], dense_rank.get(item_id), rank, score, fused)

    if mode == "lexical":
        return [candidate(item_id) for item_id in lexical]
    if fusion == "rrf":
        ranked = reciprocal_rank_fusion([list(dense_rank), list(lexical)], RRF_K)
        return [candidate(f.key, f.score) for f in ranked[:depth]]
    scores = relative_fusion(similarity, {i: score for i, (_, score) in lexical.items()})
    return [candidate(item_id, fused) for item_id, fused in scores[:depth]]


def relative_fusion(
    similarity: dict[int, float], lexical: dict[int, float], weight: float = LEXICAL_WEIGHT
) -> list[tuple[int, float]]:
    """Every candidate of ``similarity`` (all of them) with its fused score, best first:
    ``(1 - weight)`` * its similarity min-max scaled over the candidates + ``weight`` * its
    word-match score over the best word match's (0 when not one). Ties: more similar first."""
    low, high = min(similarity.values(), default=0.0), max(similarity.values(), default=0.0)
    best = max(lexical.values(), default=0.0)

    def fused(item_id: int) -> float:
        dense = (similarity[item_id] - low) / (high - low) if high > low else 1.0
        words = lexical.get(item_id, 0.0) / best if best > 0 else 0.0
        return (1 - weight) * dense + weight * words

    scored = [(item_id, fused(item_id)) for item_id in similarity]
    return sorted(scored, key=lambda pair: (-pair[1], -similarity[pair[0]]))


def _similarities(collection: Collection, query: np.ndarray, ids: list[int]) -> dict[int, float]:
    """Cosine similarity of ``query`` to the stored vectors of ``ids``."""
    stored: dict[int, Any] = collection.vectors(ids)
    if not stored:
        return {}
    keys = list(stored)
    matrix = np.asarray([stored[i] for i in keys], dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1) * max(float(np.linalg.norm(query)), 1e-12)
    scores = matrix @ query / np.maximum(norms, 1e-12)
    return {i: float(s) for i, s in zip(keys, scores, strict=True)}
