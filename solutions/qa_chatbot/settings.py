"""The QA chatbot's own settings, on top of the shared ones."""

from typing import Annotated

from fastapi import Depends
from pydantic import Field

from common import Settings, get_settings


class QASettings(Settings):
    qa_min_score: float = Field(
        0.55,
        ge=-1.0,
        le=1.0,
        description="Below this cosine similarity the bot says it has no confident answer "
        "(env SEARCH_QA_MIN_SCORE).",
    )
    qa_max_ratio: float = Field(
        0.895,
        ge=0.0,
        le=1.0,
        description="The bot answers only if the best match's cosine distance (1 - score) is "
        "at most this fraction of the distance of the closest stored question with a "
        "different answer; otherwise it says it is not sure. 1 turns the check off "
        "(env SEARCH_QA_MAX_RATIO).",
    )


# What a route declares to read them: ``settings: Config``.
Config = Annotated[QASettings, Depends(get_settings)]
