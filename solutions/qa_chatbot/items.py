"""A question/answer pair: the record, its content key and what its vector encodes."""

from collections.abc import Sequence
from typing import Annotated, Any

import numpy as np
from pydantic import ConfigDict, Field, StringConstraints
from sqlalchemy import Text

from common import Collection, Column, Encoder, ItemCodec, Record
from solutions.qa_chatbot.encoders import as_encoders

MAX_QUESTION = 1000
MAX_ANSWER = 10_000

Question = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUESTION)
]
Answer = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ANSWER)
]


class QAPair(Record):
    """One stored question with its answer: what a CSV row, a JSON line or an add carries."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "question": "What does nprobe control in an IVF index?",
                    "answer": "How many clusters a search visits: more is slower but finds more.",
                }
            ]
        }
    )

    question: Annotated[Question, Column(Text(), fulltext=True)] = Field(
        description=f"1-{MAX_QUESTION} characters."
    )
    answer: Annotated[Answer, Column(Text(), fulltext=True)] = Field(
        description=f"1-{MAX_ANSWER} characters."
    )


def question_key(pair: QAPair) -> str:
    """Pairs are the same item when their questions match ignoring case and spacing."""
    return " ".join(pair.question.split()).casefold()


def qa_codec(encoders: Encoder, collection: Collection) -> ItemCodec[QAPair]:
    """Pairs are encoded by their question, with the model the collection chose."""
    encoder = as_encoders(encoders).of(collection)

    def encode(pairs: Sequence[QAPair]) -> np.ndarray | Sequence[Any]:
        return encoder.encode([pair.question for pair in pairs])

    return ItemCodec(key=question_key, record=lambda pair: pair.model_dump(), encode=encode)
