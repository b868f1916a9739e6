"""Ask and search: the QA chatbot's own routes."""

from typing import Annotated, Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict, Field

from common import ErrorResponse, ExistingCollection, Hit, json_example
from solutions.qa_chatbot.confidence import MESSAGES, Reason, Rule, decide, distance_ratio
from solutions.qa_chatbot.encoders import Encoders, options_of
from solutions.qa_chatbot.items import QAPair, Question
from solutions.qa_chatbot.retrieval import LEXICAL_WEIGHT, Candidate, Fusion, Mode, retrieve
from solutions.qa_chatbot.settings import Config

router = APIRouter(tags=["ask"])

# How many candidates each ranking gives, for a competing answer, whatever top_k asks for.
CANDIDATES = 10
MODE_DESCRIPTION = (
    "dense: closest in meaning (cosine over the collection's encoder); lexical: best word "
    "match (bm25 on SQLite, InnoDB full-text on MySQL) over questions and answers; hybrid: "
    "both, fused (see fusion)."
)
FUSION_DESCRIPTION = (
    f"hybrid only. relative: {1 - LEXICAL_WEIGHT:g} x the similarity scaled to 0-1 over the "
    f"candidates + {LEXICAL_WEIGHT:g} x the word-match score over the best one's (measured "
    "better); rrf: reciprocal rank fusion, the sum of 1 / (60 + rank) over both rankings."
)

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
    "dense_rank": 2,
    "lexical_rank": 2,
    "lexical_score": 6.3968,
    "fused_score": 0.710896,
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
    mode: Mode = Field("hybrid", description=MODE_DESCRIPTION)
    fusion: Fusion = Field("relative", description=FUSION_DESCRIPTION)
    min_score: float | None = Field(
        None,
        ge=-1.0,
        le=1.0,
        description="Confidence threshold (cosine similarity) for this request; defaults to "
        "SEARCH_QA_MIN_SCORE, or else to the collection's encoder's calibrated threshold.",
    )
    max_ratio: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="Largest distance ratio to the closest different answer for this "
        "request; defaults to SEARCH_QA_MAX_RATIO, or else to the encoder's calibrated "
        "ratio (1: no near-tie check; a different answer closer in meaning still stops it).",
    )


class SearchRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"query": "nprobe", "top_k": 3, "mode": "lexical"}]}
    )

    query: Question = Field(description="Words or a question.")
    top_k: int = Field(10, ge=1, le=100, description="How many Q&A pairs to return.")
    mode: Mode = Field("hybrid", description=MODE_DESCRIPTION)
    fusion: Fusion = Field("relative", description=FUSION_DESCRIPTION)


class SimilarQuestion(Hit, QAPair):
    """A stored pair as a search result: its id, its fields, its score and its ranks."""

    model_config = ConfigDict(json_schema_extra={"examples": [NLIST]})

    score: float = Field(
        description="Cosine similarity to the asked question, -1 to 1 (in every mode: the "
        "rule for answering reads it)."
    )
    dense_rank: int | None = Field(
        None, description="Rank among the closest in meaning (from 1); null if not among them."
    )
    lexical_rank: int | None = Field(
        None, description="Rank among the best word matches (from 1); null if not among them."
    )
    lexical_score: float | None = Field(
        None,
        description="The word-match score (bm25 on SQLite, InnoDB relevance on MySQL; higher "
        "is better, the scales differ); null if not a word match.",
    )
    fused_score: float | None = Field(
        None, description="hybrid: the score the two rankings were fused into (see fusion)."
    )

    @classmethod
    def of_candidate(cls, candidate: Candidate) -> "SimilarQuestion":
        lexical, fused = candidate.lexical_score, candidate.fused_score
        return cls.of(
            candidate.match,
            dense_rank=candidate.dense_rank,
            lexical_rank=candidate.lexical_rank,
            lexical_score=None if lexical is None else round(lexical, 4),
            fused_score=None if fused is None else round(fused, 6),
        )


class SearchResponse(BaseModel):
    query: str
    mode: Mode
    encoder: str = Field(description="The collection's encoder, which encoded the query.")
    results: list[SimilarQuestion] = Field(description="Best first, in the ranking of mode.")


class AskResponse(BaseModel):
    question: str
    mode: Mode = Field(description="The ranking the candidates came in.")
    encoder: str = Field(description="The collection's encoder, which encoded the question.")
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
        "a different answer matches almost as well (or better, when a lexical ranking put the "
        "best match first); empty: nothing is stored; no_match (mode lexical): no stored pair "
        "shares a word with the question."
    )
    competitor: SimilarQuestion | None = Field(
        description="Among the candidates, the stored question closest in meaning whose "
        "answer differs from the best match's (answers equal but for case, spacing and "
        "punctuation are one answer); null if none."
    )
    ratio: float | None = Field(
        description="(1 - score) / (1 - competitor score): 0 for an exact match, 1 when both "
        "match equally well, above 1 when the competitor is closer; null without a competitor."
    )
    max_ratio: float = Field(description="Above this ratio the bot said it was not sure.")


SEARCH_EXAMPLE: dict[str, Any] = {  # a real search of the sample, on SQLite
    "query": "nprobe",
    "mode": "lexical",
    "encoder": "all-MiniLM-L6-v2",
    "results": [
        {
            **NLIST,
            "score": 0.4956,
            "dense_rank": None,
            "lexical_score": 5.4506,
            "lexical_rank": 1,
            "fused_score": None,
        },
    ],
}
ASK_EXAMPLE: dict[
    str, Any
] = {  # a real answer from the sample: the README's section 2 shows the same run
    "question": "what does nprobe do",
    "mode": "hybrid",
    "encoder": "all-MiniLM-L6-v2",
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
            "dense_rank": 1,
            "lexical_rank": 1,
            "lexical_score": 7.9869,
            "fused_score": 1.0,
        },
        NLIST,
    ],
    "reason": "answered",
    "competitor": NLIST,
    "ratio": 0.5341,
    "max_ratio": 0.895,
}


def first_set(*values: float | None) -> float:
    """The request's value, else the setting, else the calibrated one."""
    return next(value for value in values if value is not None)


def candidates_for(
    collection: ExistingCollection,
    encoders: Encoders,
    request: "AskRequest | SearchRequest",
) -> list[SimilarQuestion]:
    question = request.question if isinstance(request, AskRequest) else request.query
    depth = max(request.top_k, CANDIDATES)
    encoder = encoders.of(collection)
    found = retrieve(collection, encoder, question, request.mode, depth, request.fusion)
    # Decide on the rounded scores the response shows, so that they explain the decision.
    return [SimilarQuestion.of_candidate(c) for c in found]


@router.post(
    "/collections/{name}/ask",
    summary="Answer a question with the answer of the most similar stored question",
    responses={
        200: json_example(ASK_EXAMPLE),
        404: {"model": ErrorResponse, "description": "Unknown collection."},
        422: {
            "model": ErrorResponse,
            "description": "Empty question, a value out of range, an unknown mode, or (mode "
            "lexical) a question without words.",
        },
    },
)
def ask(
    request: Annotated[AskRequest, Body()],
    collection: ExistingCollection,
    encoders: Encoders,
    settings: Config,
) -> AskResponse:
    """The stored answer of the best stored question, when the bot is sure.

    Candidates are ranked by `mode` (hybrid by default). The first is answered when its
    cosine similarity reaches `min_score` and no stored question with a different answer is
    almost as close in meaning, or closer (`max_ratio`); otherwise `answered` is false,
    `reason` says why, and `similar` lists the candidates to choose from.
    """
    calibrated = encoders.rule(collection)
    rule = Rule(
        min_score=first_set(request.min_score, settings.qa_min_score, calibrated.min_score),
        max_ratio=first_set(request.max_ratio, settings.qa_max_ratio, calibrated.max_ratio),
    )
    candidates = candidates_for(collection, encoders, request)
    # The decision reads the first CANDIDATES whatever top_k asks for.
    reason, competitor = decide(candidates[:CANDIDATES], rule)
    if reason == "empty" and collection.count() > 0:
        reason = "no_match"
    best = candidates[0] if candidates else None
    answered = best if reason == "answered" else None
    return AskResponse(
        question=request.question,
        mode=request.mode,
        encoder=options_of(collection).encoder,
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


@router.post(
    "/collections/{name}/search",
    summary="Rank stored Q&A pairs by meaning, by words, or both",
    responses={
        200: json_example(SEARCH_EXAMPLE),
        404: {"model": ErrorResponse, "description": "Unknown collection."},
        422: {
            "model": ErrorResponse,
            "description": "Empty query, top_k out of range, an unknown mode, or (mode "
            "lexical) a query without words.",
        },
    },
)
def search(
    request: Annotated[SearchRequest, Body()],
    collection: ExistingCollection,
    encoders: Encoders,
) -> SearchResponse:
    """The `top_k` best stored pairs in the ranking of `mode`, each with where it came from
    (`dense_rank`, `lexical_rank`, `fused_score`) and its cosine similarity. No decision."""
    found = candidates_for(collection, encoders, request)
    return SearchResponse(
        query=request.query,
        mode=request.mode,
        encoder=options_of(collection).encoder,
        results=found[: request.top_k],
    )
