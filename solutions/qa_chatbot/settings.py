"""The QA chatbot's own settings, on top of the shared ones."""

from pydantic import Field

from common.settings import Settings


class QASettings(Settings):
    qa_min_score: float = Field(
        0.55,
        ge=-1.0,
        le=1.0,
        description="Below this cosine similarity the bot says it has no confident answer "
        "(env SEARCH_QA_MIN_SCORE).",
    )
