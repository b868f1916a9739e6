"""Run one load in this process and die in the middle of it, for the consistency tests.

    python -m tests.crash_load FILE MODE [APP [BATCH [ONLY]]]

APP is the module declaring the app's ``SOLUTION`` (the QA chatbot by default), BATCH the
write it dies on (3 by default; a video app writes one video per batch), ONLY the physical
name of the one collection whose writes count (all by default; a video's faces go to a
companion collection before its frames).
MODE ``after-milvus`` dies (``os._exit``) on the 3rd batch right after its vectors reached
Milvus and before SQL marked them ready; ``before-index`` dies inside the transaction that
marks them ready, after the rows' update and before the full-text index write;
``before-milvus`` dies right before the 3rd batch's Milvus insert; ``slow`` just loads in
small batches so the test can SIGKILL it at any moment.
Backends come from the usual ``SEARCH_*`` environment variables.
"""

import asyncio
import importlib
import os
import sys
from pathlib import Path
from typing import Any

from common.api.loads import LoadSource, start_load
from common.app import start_app
from common.lexical import LexicalIndex
from common.record_store import READY, RecordStore
from common.solution import Solution
from common.vector_store import VectorStore

KILLED = 137
FATAL_BATCH = 3


def inject(mode: str, fatal: int = FATAL_BATCH, only: str | None = None) -> None:
    calls = {"n": 0}

    def die_on_fatal_batch(physical: str) -> None:
        if only is not None and physical != only:
            return
        calls["n"] += 1
        if calls["n"] == fatal:
            print("dying now", flush=True)
            os._exit(KILLED)

    if mode == "after-milvus":
        set_state = RecordStore.set_state

        def set_state_then_die(
            self: RecordStore, table: Any, ids: Any, state: str, *a: Any
        ) -> None:
            if state == READY:
                die_on_fatal_batch(table.name)
            set_state(self, table, ids, state, *a)

        RecordStore.set_state = set_state_then_die  # type: ignore[method-assign]
    elif mode == "before-index":
        add = LexicalIndex.add

        def die_then_add(self: LexicalIndex, entries: Any, connection: Any = None) -> None:
            die_on_fatal_batch(self.table.strip('"`').removesuffix("__text"))
            add(self, entries, connection)

        LexicalIndex.add = die_then_add  # type: ignore[method-assign]
    elif mode == "before-milvus":
        insert = VectorStore.insert

        def die_then_insert(self: VectorStore, name: str, rows: Any) -> None:
            die_on_fatal_batch(name)
            insert(self, name, rows)

        VectorStore.insert = die_then_insert  # type: ignore[method-assign]


async def main(path: Path, mode: str, app: str, fatal: int, only: str | None) -> None:
    inject(mode, fatal, only)
    solution: Solution[Any] = importlib.import_module(app).SOLUTION
    settings = solution.settings_model(load_sample_data=False, job_batch_size=16)
    context = await start_app(solution, settings)
    parser = solution.loader.parser(settings, solution.loader.options())
    job = start_load(context, "crash", LoadSource("crash-test", path, parser))
    print(f"job {job.id}", flush=True)
    await asyncio.to_thread(context.runner.wait, job.id)
    print("finished without dying", flush=True)


if __name__ == "__main__":
    file, mode, *rest = sys.argv[1:]
    app = rest[0] if rest else "solutions.qa_chatbot.app"
    fatal = int(rest[1]) if len(rest) > 1 else FATAL_BATCH
    only = rest[2] if len(rest) > 2 else None
    asyncio.run(main(Path(file), mode, app, fatal, only))
