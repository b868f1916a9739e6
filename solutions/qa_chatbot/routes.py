"""Ask: the QA chatbot's one search route."""

from typing import Annotated, cast

from fastapi import APIRouter, Body
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from common.context import AppEncoder, Context, ExistingCollection
from common.http import ErrorResponse
from solutions.qa_chatbot.items import Question
from solutions.qa_chatbot.settings import QASettings

router = APIRouter(tags=["ask"])


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


class SimilarQuestion(BaseModel):
    id: str
    question: str
    answer: str
    score: float = Field(description="Cosine similarity to the asked question, -1 to 1.")


class AskResponse(BaseModel):
    question: str
    answered: bool = Field(description="False when no stored question reaches the threshold.")
    answer: str | None = Field(description="The best answer, or null when not confident.")
    score: float | None = Field(description="Similarity of the best match.")
    matched_question: str | None
    threshold: float
    message: str
    similar: list[SimilarQuestion] = Field(description="Closest stored questions, best first.")


@router.post(
    "/collections/{name}/ask",
    summary="Answer a question with the answer of the most similar stored question",
    responses={
        404: {"model": ErrorResponse, "description": "Unknown collection."},
        422: {"model": ErrorResponse, "description": "Empty question or bad top_k."},
    },
)
async def ask(
    request: Annotated[AskRequest, Body()],
    collection: ExistingCollection,
    encoder: AppEncoder,
    context: Context,
) -> AskResponse:
    threshold = request.min_score
    if threshold is None:
        threshold = cast(QASettings, context.settings).qa_min_score
    vectors = await run_in_threadpool(encoder.encode, [request.question])
    matches = (await run_in_threadpool(collection.search, vectors, request.top_k))[0]
    similar = [
        SimilarQuestion(
            id=str(m.id),
            question=m.record["question"],
            answer=m.record["answer"],
            score=round(m.score, 4),
        )
        for m in matches
    ]
    best = similar[0] if similar else None
    if best is not None and best.score >= threshold:
        return AskResponse(
            question=request.question,
            answered=True,
            answer=best.answer,
            score=best.score,
            matched_question=best.question,
            threshold=threshold,
            message="answered",
            similar=similar,
        )
    return AskResponse(
        question=request.question,
        answered=False,
        answer=None,
        score=best.score if best else None,
        matched_question=None,
        threshold=threshold,
        message=(
            "No confident answer. The closest stored questions are listed below."
            if similar
            else "No confident answer: the collection is empty."
        ),
        similar=similar,
    )
