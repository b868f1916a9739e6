"""When the bot answers: a similarity threshold and a distance ratio to a different answer."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

Reason = Literal["answered", "low_score", "ambiguous", "empty", "no_match"]

MESSAGES: dict[Reason, str] = {
    "answered": "answered",
    "low_score": "No confident answer. The closest stored questions are listed below.",
    "ambiguous": "Not sure: two different stored answers match almost equally well. "
    "The closest stored questions are listed below.",
    "empty": "No confident answer: the collection is empty.",
    "no_match": "No confident answer: no stored question or answer shares a word with this "
    "question.",
}


@dataclass(frozen=True)
class Rule:
    """When the bot answers: see ``decide``."""

    min_score: float
    max_ratio: float


class Scored(Protocol):
    """A candidate: its cosine similarity to the question and its stored answer."""

    @property
    def score(self) -> float: ...

    @property
    def answer(self) -> str: ...


C = TypeVar("C", bound=Scored)


def answer_key(answer: str) -> str:
    """Two answers are one answer when their words match, ignoring case and punctuation."""
    return " ".join(re.findall(r"\w+", answer.casefold()))


def distance_ratio(best: Scored, competitor: Scored) -> float:
    """The best match's cosine distance over its competitor's: 0 if exact, 1 for a tie, above
    1 when the competitor is the closer of the two (a lexical ranking put ``best`` first)."""
    if best.score >= 1:
        return 0.0  # asked word for word: nothing can be closer
    rest = 1 - competitor.score
    return round((1 - best.score) / rest, 4) if rest > 0 else 1.0


def competitor_of(candidates: Sequence[C]) -> C | None:
    """The candidate closest in meaning (highest cosine) whose answer differs from the first's.

    Stored questions that share an answer do not compete: asking either gets the same reply.
    """
    if not candidates:
        return None
    key = answer_key(candidates[0].answer)
    others = [c for c in candidates[1:] if answer_key(c.answer) != key]
    return max(others, key=lambda c: c.score, default=None)


def decide(candidates: Sequence[C], rule: Rule) -> tuple[Reason, C | None]:
    """Answer the first candidate, or say why not; and its competitor, if any.

    Candidates come in the order of the chosen ranking (dense, lexical or fused), each with
    its cosine similarity to the question, whichever ranking found it. The first is answered
    when its similarity reaches ``min_score`` and its cosine distance is at most
    ``max_ratio`` (at most 1) times that of its competitor. So a candidate a lexical ranking
    put first is answered only if it is also close in meaning, and no other answer is closer,
    whatever the settings. A stored question asked word for word (distance 0) passes
    whatever the ratio.
    """
    if not candidates:
        return "empty", None
    best, competitor = candidates[0], competitor_of(candidates)
    if best.score < rule.min_score:
        return "low_score", competitor
    # max_ratio 1 leaves out the near-tie check, not this: an answer closer in meaning wins.
    if competitor is not None and distance_ratio(best, competitor) > rule.max_ratio:
        return "ambiguous", competitor
    return "answered", competitor
