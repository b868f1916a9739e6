"""The QA chatbot's text encoders: each collection chooses one when it is created.

``all-MiniLM-L6-v2`` (English, the default) or ``multilingual-e5-small`` (about 100 languages,
Chinese among them). The choice is kept with the collection (its options), and a question
asked of a collection is encoded by that collection's model. Both make 384-d unit vectors;
their cosine similarities are on different scales, so each has its own calibrated rule for
when the bot answers (measured in ``benchmarks/qa_eval.py``).
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

import numpy as np
from fastapi import Depends
from pydantic import BaseModel, ConfigDict, Field

from common import Capabilities, Collection, Context, Encoder, VectorIndex
from common.encoders.e5 import E5Encoder
from common.encoders.minilm import MiniLMEncoder
from solutions.qa_chatbot.confidence import Rule
from solutions.qa_chatbot.settings import QASettings

EncoderName = Literal["all-MiniLM-L6-v2", "multilingual-e5-small"]
DEFAULT: EncoderName = "all-MiniLM-L6-v2"


@dataclass(frozen=True)
class TextModel:
    """A model a collection may choose: how to load it, its dimension, its default rule."""

    load: Callable[[QASettings], Encoder]
    dim: int
    rule: Rule


TEXT_MODELS: dict[EncoderName, TextModel] = {
    # Calibrated on benchmarks/data/gardening_* (tuning half), see benchmarks/README.md.
    "all-MiniLM-L6-v2": TextModel(
        lambda settings: MiniLMEncoder(cache_dir=settings.qa_model_dir),
        MiniLMEncoder.dim,
        Rule(0.55, 0.895),
    ),
    # Calibrated on benchmarks/data/eval_* (tuning halves), see benchmarks/README.md.
    "multilingual-e5-small": TextModel(
        lambda _settings: E5Encoder(), E5Encoder.dim, Rule(0.855, 0.94)
    ),
}
assert set(TEXT_MODELS) == set(get_args(EncoderName))


class QAOptions(BaseModel):
    """What a QA collection is built with; chosen once, when it is created."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"encoder": "multilingual-e5-small"}]}
    )

    encoder: EncoderName = Field(
        DEFAULT,
        description="all-MiniLM-L6-v2: English, the faster one. multilingual-e5-small: about "
        "100 languages (Chinese among them), questions and their translations land close "
        "together.",
    )


def options_of(collection: Collection) -> QAOptions:
    return QAOptions.model_validate(collection.options)


def qa_index(options: Mapping[str, Any], _capabilities: Capabilities) -> VectorIndex:
    """Cosine HNSW (M=16, efConstruction=200, ef=64: the defaults) of the chosen model's size."""
    return VectorIndex(dim=TEXT_MODELS[QAOptions.model_validate(options).encoder].dim)


class QAEncoders:
    """The app's encoder: every model a collection may choose, loaded once at start."""

    name = " or ".join(TEXT_MODELS) + " (chosen per collection)"
    dim = TEXT_MODELS[DEFAULT].dim
    metric = "COSINE"

    def __init__(self, models: Mapping[EncoderName, Encoder]) -> None:
        self.models = dict(models)

    @classmethod
    def load(cls, settings: QASettings) -> "QAEncoders":
        return cls({name: model.load(settings) for name, model in TEXT_MODELS.items()})

    def batched(self, wrap: Callable[[Encoder], Encoder]) -> "QAEncoders":
        """Each model batched (``common/batching.py``)."""
        return QAEncoders({name: wrap(model) for name, model in self.models.items()})

    def of(self, collection: Collection) -> Encoder:
        """The model of ``collection``."""
        return self.models[options_of(collection).encoder]

    def rule(self, collection: Collection) -> Rule:
        """The default rule of the model of ``collection``."""
        return TEXT_MODELS[options_of(collection).encoder].rule

    def encode(self, texts: Sequence[str]) -> np.ndarray | Sequence[Any]:
        """Encode with the default model (a collection's own: ``of(collection).encode``)."""
        return self.models[DEFAULT].encode(texts)


def as_encoders(encoder: Encoder) -> QAEncoders:
    """The app's encoder as what it is (``Solution.load_encoder`` types it as any encoder)."""
    if not isinstance(encoder, QAEncoders):
        raise TypeError(f"the QA chatbot runs with QAEncoders, not {type(encoder).__name__}")
    return encoder


async def get_encoders(context: Context) -> QAEncoders:  # memory only: no thread (see Context)
    return as_encoders(context.encoder)


Encoders = Annotated[QAEncoders, Depends(get_encoders)]
