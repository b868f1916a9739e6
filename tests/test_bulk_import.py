"""Bulk import (``Collection.importing``): the same result as batched inserts, all or nothing.

On the server pair only: Milvus Lite has no bulk import (and the apps refuse
``SEARCH_BULK_IMPORT_DIR`` on it, tested at the end).
"""

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pymilvus import utility
from pymilvus.client.types import BulkInsertState
from sqlalchemy import BigInteger, String

from common.app import create_app
from common.bulk_import import ImportFiles
from common.collection import Collection, Collections, CollectionSpec, Entry, Storage, content_id
from common.errors import StartupError
from common.media import MediaStore
from common.record_store import PENDING, RecordField, RecordStore
from common.solution import Solution
from common.vector_store import ImportFailed, VectorIndex, VectorStore
from solutions.qa_chatbot.settings import QASettings
from solutions.qa_chatbot.tests.fixtures import generated_pairs, write_csv
from tests.fixtures import Backend, make_settings, provide_backend
from tests.helpers import store_ids, wait_for_job

DIM = 32
# A FLAT index searches exactly: the two paths must then rank every query the same.
SPEC = CollectionSpec(
    index=VectorIndex(
        dim=DIM, metric="COSINE", index_type="FLAT", build_params={}, search_params={}
    ),
    fields=(
        RecordField("title", String(200)),
        RecordField("label", String(50)),
        RecordField("rank", BigInteger()),
    ),
    filter_fields={"label": "varchar", "rank": "int64"},
    fulltext_fields=("title",),
)
ENDED = {
    BulkInsertState.ImportCompleted,
    BulkInsertState.ImportFailed,
    BulkInsertState.ImportFailedAndCleaned,
}
WORDS = ["amber", "basalt", "cobalt", "dune", "ember", "fjord", "glacier", "harbor"]


@pytest.fixture
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return provide_backend("server", request, tmp_path)


@pytest.fixture
def collections(server: Backend, tmp_path: Path) -> Iterator[Collections]:
    storage = Storage(
        VectorStore(server.milvus_uri),
        RecordStore(server.sql_url),
        MediaStore(tmp_path / "media"),
        imports=tmp_path / "imports",
    )
    yield Collections(storage, "test", SPEC)
    storage.close()


def entries(count: int, seed: int = 0) -> list[Entry]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(count, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [
        Entry(
            content_id(f"{seed}-{i}"),
            vector,
            {"title": f"item {i} {WORDS[i % 8]}", "label": WORDS[i % 3], "rank": i % 5},
        )
        for i, vector in enumerate(vectors)
    ]


def in_batches(entries: list[Entry], size: int = 5000) -> Iterator[list[Entry]]:
    for start in range(0, len(entries), size):
        yield entries[start : start + size]


def left_in(collection: Collection) -> tuple[set[int], set[int], list[int], list[Path]]:
    """(Milvus ids, SQL ids, pending SQL ids, import files) of a collection."""
    storage = collection.storage
    milvus_ids, sql_ids, _ = store_ids(collection)
    pending = storage.records.ids_in_state(collection.table, PENDING)
    assert storage.imports is not None
    files = list(storage.imports.rglob("*")) if storage.imports.exists() else []
    return milvus_ids, sql_ids, pending, files


def test_a_bulk_load_stores_what_batched_inserts_store(collections: Collections) -> None:
    items = entries(200_000)
    batched, bulk = collections.create("batched"), collections.create("bulk")
    for batch in in_batches(items):
        batched.add(batch)
    with bulk.importing() as load:
        added = duplicates = 0
        for batch in in_batches(items[:150_000] + items[:1000] + items[150_000:]):
            new, again = load.add(batch)
            added, duplicates = added + len(new), duplicates + len(again)
        assert bulk.count() == 0  # nothing searchable before the import
        load.commit()
    assert (added, duplicates) == (200_000, 1000)

    ids = {e.id for e in items}
    for collection in (batched, bulk):
        milvus_ids, sql_ids, count = store_ids(collection)
        assert milvus_ids == sql_ids == ids and count == len(ids)
    sample = [items[7].id, items[123_456].id]
    kept, expected = bulk.records(sample), batched.records(sample)
    for item_id in sample:
        assert {**kept[item_id], "created_at": 0} == {**expected[item_id], "created_at": 0}
    queries = np.stack([e.vector for e in entries(20, seed=1)])
    for where in (None, {"label": "dune"}, {"rank": 3}):
        expected = batched.search(queries, 10, where=where)
        found = bulk.search(queries, 10, where=where)
        assert [[(m.id, round(m.score, 5)) for m in row] for row in found] == [
            [(m.id, round(m.score, 5)) for m in row] for row in expected
        ]
    assert {m.id for m in bulk.lexical_search("glacier", 50)} == {
        m.id for m in batched.lexical_search("glacier", 50)
    }
    assert bulk.version != (0, 0)  # other processes see that the collection changed
    # Loading the same items again adds nothing, through either path.
    with bulk.importing() as load:
        assert load.add(items[:5000]) == ([], [e.id for e in items[:5000]])
        load.commit()
    assert bulk.count() == len(ids)


def test_a_failed_import_leaves_nothing(
    collections: Collections, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = entries(20_000)
    collection = collections.create("failing")
    collection.add(items[:100])  # stored before: stays
    # Vectors of the wrong dimension: Milvus refuses the file when it reads it.
    wrong = ImportFiles._vectors
    monkeypatch.setattr(ImportFiles, "_vectors", lambda self, v: wrong(self, v)[:, : DIM // 2])
    with pytest.raises(ImportFailed, match="dimension"), collection.importing() as load:
        for batch in in_batches(items):
            load.add(batch)
        load.commit()
    kept = {e.id for e in items[:100]}
    milvus_ids, sql_ids, pending, files = left_in(collection)
    assert (milvus_ids, sql_ids, pending, files) == (kept, kept, [], [])
    assert {m.id for m in collection.lexical_search("glacier", 50)} <= kept
    monkeypatch.undo()
    # The same items load afterwards.
    with collection.importing() as load:
        assert len(load.add(items)[0]) == len(items) - 100
        load.commit()
    assert store_ids(collection)[:2] == ({e.id for e in items},) * 2


def test_a_load_stopped_before_its_import_leaves_nothing(collections: Collections) -> None:
    items = entries(12_000)
    collection = collections.create("stopped")
    with pytest.raises(RuntimeError, match="cancelled"), collection.importing() as load:
        for batch in in_batches(items):
            load.add(batch)
        raise RuntimeError("cancelled")  # a cancel, or a failure, before the import
    assert left_in(collection) == (set(), set(), [], [])
    assert (
        utility.list_bulk_insert_tasks(
            collection_name=collection.physical, using=collection.storage.vectors._alias
        )
        == []
    )


def test_recovery_waits_for_what_a_dead_process_was_importing(
    collections: Collections, tmp_path: Path
) -> None:
    """A process died after handing Milvus its files: the import goes on without it. The
    clean-up of the load's pending rows must wait for it: rows Milvus imports after their
    delete stay (seen without the wait), and nothing could ever find them again."""
    items = entries(200_000)
    collection = collections.create("orphaned")
    storage = collection.storage
    for batch in in_batches(items):  # what the dead process wrote
        storage.records.insert_pending(collection.table, [{"id": e.id, **e.record} for e in batch])
    files = ImportFiles(tmp_path / "dead", "float", DIM, SPEC.filter_fields)
    files.add([(e.id, e.vector, collection._filter_values(e)) for e in items])
    alias = storage.vectors._alias
    [part] = files.finish()
    task = utility.do_bulk_insert(collection.physical, files=[str(p) for p in part], using=alias)
    assert utility.get_bulk_insert_state(task, using=alias).state not in ENDED

    collections.recover()  # another process's takeover, or the next start

    assert utility.get_bulk_insert_state(task, using=alias).state == BulkInsertState.ImportCompleted
    # Imported rows become searchable some seconds after "Completed": none may appear.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert left_in(collection)[:3] == (set(), set(), [])
        time.sleep(1)


def test_an_app_bulk_imports_large_loads_and_answers_from_them(
    server: Backend, tmp_path: Path, qa_solution: Solution[QASettings]
) -> None:
    settings = make_settings(
        server, tmp_path, QASettings, bulk_import_dir=tmp_path / "bulk", bulk_import_min_items=300
    )
    pairs = generated_pairs(300, seed=5)
    upload = write_csv(tmp_path / "pairs.csv", pairs)
    with TestClient(create_app(qa_solution, settings)) as qa:
        jobs = {}
        for name, rows in (("bulk", pairs), ("batched", pairs[:299])):
            csv = write_csv(tmp_path / f"{name}.csv", rows)
            with csv.open("rb") as file:
                response = qa.post(f"/collections/{name}/loads", files={"file": (csv.name, file)})
            assert response.status_code == 202, response.text
            jobs[name] = wait_for_job(qa, response.json()["id"], timeout=300)
        assert jobs["bulk"]["status"] == "succeeded", jobs["bulk"]
        assert jobs["bulk"]["added"] == 300 and "import" in jobs["bulk"]["timings"]
        assert (
            jobs["batched"]["status"] == "succeeded" and "import" not in jobs["batched"]["timings"]
        )
        question, answer = pairs[123]
        for name in ("bulk", "batched"):
            found = qa.post(f"/collections/{name}/ask", json={"question": question}).json()
            assert found["answered"] and found["answer"] == answer, found
        bulk_ids = {i["id"] for i in qa.get("/collections/bulk/items?limit=500").json()}
        batched_ids = {i["id"] for i in qa.get("/collections/batched/items?limit=500").json()}
        assert batched_ids < bulk_ids and len(bulk_ids) == 300
        # Loaded again: every pair is a duplicate.
        with upload.open("rb") as file:
            response = qa.post("/collections/bulk/loads", files={"file": ("pairs.csv", file)})
        again = wait_for_job(qa, response.json()["id"], timeout=300)
        assert (again["status"], again["added"], again["duplicates"]) == ("succeeded", 0, 300)
    assert not list((tmp_path / "bulk").iterdir())  # import files removed


def test_milvus_lite_refuses_a_bulk_import_folder(
    tmp_path: Path, request: pytest.FixtureRequest, qa_solution: Solution[QASettings]
) -> None:
    lite = provide_backend("lite", request, tmp_path)
    settings = make_settings(lite, tmp_path, QASettings, bulk_import_dir=tmp_path / "bulk")
    with (
        pytest.raises(StartupError, match="SEARCH_BULK_IMPORT_DIR"),
        TestClient(create_app(qa_solution, settings)),
    ):
        pass
