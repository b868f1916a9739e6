"""Ask: the QA chatbot's one search route, and the rule that decides whether to answer."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict, Field

from common import AppEncoder, ErrorResponse, ExistingCollection, Hit, json_example
from solutions.qa_chatbot.items import QAPair, Question
from solutions.qa_chatbot.settings import Config

router = APIRouter(tags=["ask"])

# How many matches are searched for a competing answer, whatever top_k asks for.
CANDIDATES = 10

Reason = Literal["answered", "low_score", "ambiguous", "empty"]

MESSAGES: dict[Reason, str] = {
    "answered": "answered",
    "low_score": "No confident answer. The closest stored questions are listed below.",
    "ambiguous": "Not sure: two different stored answers match almost equally well. "
    "The closest stored questions are listed below.",
    "empty": "No confident answer: the collection is empty.",
}


NPROBE = (
    "nprobe is the number of IVF clusters scanned for each query. Raising it improves recall "
    "and increases latency, and setting it equal to nlist scans everything, which is "
    "equivalent to a brute-force search."
)
NLIST: dict[str, Any] = {
    "id": "4050579830160691708",
    "question": "How do I pick values for nlist and nprobe?",
    "answer": "A common starting point is nlist around 4 times the square root of the number "
    "of vectors, and nprobe between roughly 1 and 10 percent of nlist. Then measure recall "
    "against a FLAT baseline and raise nprobe until recall is acceptable for your latency "
    "budget.",
    "score": 0.5074,
}


class AskRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"question": "how do I make searches in an IVF index more accurate?", "top_k": 5}
            ]
        }
    )

    question: Question = Field(description="What the user asks, in their own words.")
    top_k: int = Field(5, ge=1, le=100, description="How many similar questions to return.")
    min_score: float | None = Field(
        None,
        ge=-1.0,
        le=1.0,
        description="Confidence threshold for this request; defaults to SEARCH_QA_MIN_SCORE.",
    )
    max_ratio: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Largest distance ratio to the closest different answer for this "
        "request; defaults to SEARCH_QA_MAX_RATIO (1 turns the check off).",
    )


class SimilarQuestion(Hit, QAPair):
    """A stored pair as a search result: its id, its fields and its score."""

    model_config = ConfigDict(json_schema_extra={"examples": [NLIST]})

    score: float = Field(description="Cosine similarity to the asked question, -1 to 1.")


class AskResponse(BaseModel):
    question: str
    answered: bool = Field(
        description="False when no stored question reaches the threshold, or when a stored "
        "question with a different answer matches almost as well."
    )
    answer: str | None = Field(description="The best answer, or null when not confident.")
    score: float | None = Field(description="Similarity of the best match.")
    matched_question: str | None
    threshold: float
    message: str
    similar: list[SimilarQuestion] = Field(description="Closest stored questions, best first.")
    reason: Reason = Field(
        description="answered; low_score: the best match is below the threshold; ambiguous: "
        "a different answer matches almost as well; empty: nothing is stored."
    )
    competitor: SimilarQuestion | None = Field(
        description="The closest stored question whose answer differs from the best match's "
        "(answers equal but for case, spacing and punctuation are one answer); null if none "
        f"among the {CANDIDATES} closest."
    )
    ratio: float | None = Field(
        description="(1 - score) / (1 - competitor score): 0 for an exact match, 1 when both "
        "match equally well; null without a competitor."
    )
    max_ratio: float = Field(description="Above this ratio the bot said it was not sure.")


ASK_EXAMPLE: dict[
    str, Any
] = {  # a real answer from the sample: the README's section 2 shows the same run
    "question": "what does nprobe do",
    "answered": True,
    "answer": NPROBE,
    "score": 0.7369,
    "matched_question": "What does the nprobe parameter do?",
    "threshold": 0.55,
    "message": "answered",
    "similar": [
        {
            "id": "2011188144617001638",
            "question": "What does the nprobe parameter do?",
            "answer": NPROBE,
            "score": 0.7369,
        },
        NLIST,
    ],
    "reason": "answered",
    "competitor": NLIST,
    "ratio": 0.5341,
    "max_ratio": 0.895,
}


@dataclass(frozen=True)
class Rule:
    """When the bot answers: see ``decide``."""

    min_score: float
    max_ratio: float


def answer_key(answer: str) -> str:
    """Two answers are one answer when their words match, ignoring case and punctuation."""
    return " ".join(re.findall(r"\w+", answer.casefold()))


def distance_ratio(best: SimilarQuestion, competitor: SimilarQuestion) -> float:
    """The best match's cosine distance over its competitor's: 0 if exact, 1 for a tie."""
    if best.score >= 1:
        return 0.0  # asked word for word: nothing can be closer
    rest = 1 - competitor.score
    return round((1 - best.score) / rest, 4) if rest > 0 else 1.0


def decide(
    candidates: Sequence[SimilarQuestion], rule: Rule
) -> tuple[Reason, SimilarQuestion | None]:
    """Answer the best candidate, or say why not; and its competitor, if any.

    The best candidate is answered when it reaches ``min_score`` and its cosine distance is
    at most ``max_ratio`` times that of its competitor, the best candidate with a different
    answer. Stored questions that share an answer do not compete: asking either gets the
    same reply. A stored question asked word for word (distance 0) passes whatever the ratio.
    """
    if not candidates:
        return "empty", None
    best = candidates[0]
    key = answer_key(best.answer)
    competitor = next((c for c in candidates[1:] if answer_key(c.answer) != key), None)
    if best.score < rule.min_score:
        return "low_score", competitor
    if competitor is not None and distance_ratio(best, competitor) > rule.max_ratio:
        return "ambiguous", competitor
    return "answered", competitor


@router.post(
    "/collections/{name}/ask",
    summary="Answer a question with the answer of the most similar stored question",
    responses={
        200: json_example(ASK_EXAMPLE),
        404: {"model": ErrorResponse, "description": "Unknown collection."},
        422: {"model": ErrorResponse, "description": "Empty question or a value out of range."},
    },
)
def ask(
    request: Annotated[AskRequest, Body()],
    collection: ExistingCollection,
    encoder: AppEncoder,
    settings: Config,
) -> AskResponse:
    """The stored answer of the stored question closest in meaning, when the bot is sure.

    It answers when the best match scores at least `min_score` and no stored question with a
    different answer comes almost as close (`max_ratio`); otherwise `answered` is false,
    `reason` says why, and `similar` lists the closest stored questions to choose from.
    """
    rule = Rule(
        min_score=settings.qa_min_score if request.min_score is None else request.min_score,
        max_ratio=settings.qa_max_ratio if request.max_ratio is None else request.max_ratio,
    )
    vectors = encoder.encode([request.question])
    matches = collection.search(vectors, max(request.top_k, CANDIDATES))[0]
    # Decide on the rounded scores the response shows, so that they explain the decision.
    candidates = [SimilarQuestion.of(m) for m in matches]
    reason, competitor = decide(candidates[:CANDIDATES], rule)
    best = candidates[0] if candidates else None
    answered = best if reason == "answered" else None
    return AskResponse(
        question=request.question,
        answered=answered is not None,
        answer=answered.answer if answered else None,
        score=best.score if best else None,
        matched_question=answered.question if answered else None,
        threshold=rule.min_score,
        message=MESSAGES[reason],
        similar=candidates[: request.top_k],
        reason=reason,
        competitor=competitor,
        ratio=distance_ratio(best, competitor) if best and competitor else None,
        max_ratio=rule.max_ratio,
    )
