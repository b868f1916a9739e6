"""The QA chatbot's own settings, on top of the shared ones."""

from pathlib import Path
from typing import Annotated

from fastapi import Depends
from pydantic import Field

from common import Settings, get_settings


class QASettings(Settings):
    qa_min_score: float | None = Field(
        None,
        ge=-1.0,
        le=1.0,
        description="Below this cosine similarity the bot says it has no confident answer "
        "(env SEARCH_QA_MIN_SCORE). Unset: the threshold calibrated for the collection's "
        "encoder (0.55 for all-MiniLM-L6-v2; multilingual-e5-small's is in "
        "solutions/qa_chatbot/encoders.py).",
    )
    qa_max_ratio: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="The bot answers only if the best match's cosine distance (1 - score) is "
        "at most this fraction of the distance of the closest stored question with a "
        "different answer; otherwise it says it is not sure. 1 leaves out the near-tie "
        "check; a different answer closer in meaning (hybrid or lexical ranking can put it "
        "second) still stops it (env SEARCH_QA_MAX_RATIO). Unset: the ratio calibrated for "
        "the collection's encoder (0.895 for all-MiniLM-L6-v2, 0.94 for "
        "multilingual-e5-small).",
    )
    qa_model_dir: Path = Field(
        Path("./data/models"),
        description="Where the ONNX export of all-MiniLM-L6-v2 is cached (env "
        "SEARCH_QA_MODEL_DIR).",
    )


# What a route declares to read them: ``settings: Config``.
Config = Annotated[QASettings, Depends(get_settings)]
