"""The shared storage layer against both backend pairs: ids, ordering, dedupe, recovery."""

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from sqlalchemy import String, event, inspect, text

from common.collection import Collections, CollectionSpec, Entry, Storage, content_id
from common.errors import Conflict, InvalidInput, NotFound, UnsupportedFeature
from common.names import check_name, physical_name
from common.record_store import PENDING, RecordField
from common.vector_store import VectorIndex
from tests.fixtures import Backend
from tests.helpers import store_ids

DIM = 16
SPEC = CollectionSpec(
    index=VectorIndex(
        dim=DIM,
        metric="COSINE",
        index_type="HNSW",
        build_params={"M": 8, "efConstruction": 64},
        search_params={"ef": 32},
    ),
    fields=(RecordField("title", String(200)), RecordField("label", String(50))),
    filter_fields={"label": "varchar"},
)


@pytest.fixture
def collections(storage: Storage) -> Collections:
    return Collections(storage, "test", SPEC)


def unit_vectors(count: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def entries(count: int, seed: int = 0, label: str = "a") -> list[Entry]:
    return [
        Entry(content_id(f"{seed}-{i}"), vector, {"title": f"item {seed}-{i}", "label": label})
        for i, vector in enumerate(unit_vectors(count, seed))
    ]


def test_add_search_get_count_delete_drop(collections: Collections) -> None:
    collection = collections.create("things")
    items = entries(50)
    added, duplicates = collection.add(items)
    assert sorted(added) == sorted(e.id for e in items) and duplicates == []
    assert collection.count() == 50

    query = items[7].vector + 0.05 * unit_vectors(1, seed=9)[0]
    matches = collection.search(query[None, :], top_k=5)[0]
    assert matches[0].id == items[7].id
    assert matches[0].record["title"] == "item 0-7"
    assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)
    # The ranking is Milvus's; it must equal exact cosine ranking on this small set.
    exact = np.argsort(-(np.stack([e.vector for e in items]) @ query))[:5]
    assert [m.id for m in matches] == [items[i].id for i in exact]

    assert collection.get(items[3].id)["title"] == "item 0-3"
    assert collection.delete([items[3].id, 12345]) == [items[3].id]
    with pytest.raises(NotFound):
        collection.get(items[3].id)
    assert collection.count() == 49
    assert items[3].id not in {m.id for m in collection.search(items[3].vector[None, :], 5)[0]}

    milvus_ids, sql_ids, milvus_count = store_ids(collection)
    assert milvus_ids == sql_ids and milvus_count == 49

    collections.drop("things")
    assert collections.names() == []
    assert not collections.storage.vectors.exists(collection.physical)
    assert not collections.storage.records.table_exists(collection.physical)
    with pytest.raises(NotFound):
        collections.get("things")


def test_same_items_twice_are_stored_once(collections: Collections) -> None:
    collection = collections.create("dedupe")
    items = entries(20)
    collection.add(items)
    added, duplicates = collection.add(items + items[:5])
    assert added == [] and len(duplicates) == 25
    milvus_ids, sql_ids, milvus_count = store_ids(collection)
    assert milvus_ids == sql_ids == {e.id for e in items} and milvus_count == 20


def test_create_twice_conflicts_and_names_are_checked(collections: Collections) -> None:
    collections.create("one")
    with pytest.raises(Conflict):
        collections.create("one")
    for bad in ["x; DROP TABLE y", "../etc", "Upper", "a__b", "_a", "a_", "", "a" * 41, "é"]:
        with pytest.raises(InvalidInput):
            collections.create(bad)
    assert collections.names() == ["one"]


def test_name_rules() -> None:
    assert physical_name("qa", "faq_2") == "qa__faq_2"
    assert check_name("a1_b2") == "a1_b2"
    with pytest.raises(InvalidInput):
        check_name("robert'); DROP TABLE students;--")


def test_filter_values_cannot_inject(collections: Collections) -> None:
    collection = collections.create("filtered")
    collection.add(entries(10, seed=1, label="cats") + entries(10, seed=2, label="dogs"))
    query = unit_vectors(1, seed=5)
    cats = collection.search(query, top_k=20, where={"label": "cats"})[0]
    assert len(cats) == 10 and {m.record["label"] for m in cats} == {"cats"}
    sneaky = 'cats" or label != "'
    assert collection.search(query, top_k=20, where={"label": sneaky})[0] == []


def test_filter_values_may_hold_any_character(collections: Collections) -> None:
    """Control characters, quotes and backslashes: each filter finds exactly its label (a
    form feed once made Milvus Lite's filter parser fail, a 500)."""
    odd = ["\x0c", "bell\x07", 'tab\tnew\nline\r"quote" \\ back', "雪 😀"]
    collection = collections.create("odd_labels")
    collection.add([e for i, label in enumerate(odd) for e in entries(3, seed=i, label=label)])
    query = unit_vectors(1, seed=5)
    for label in odd:
        found = collection.search(query, top_k=20, where={"label": label})[0]
        assert [m.record["label"] for m in found] == [label] * 3, label
    assert collection.search(query, top_k=20, where={"label": "\x0c\x07"})[0] == []


def test_record_values_are_stored_verbatim(collections: Collections) -> None:
    collection = collections.create("verbatim")
    title = 'Robert\'); DROP TABLE test__verbatim;-- "quoted" \\ 雪'
    item = Entry(content_id(title), unit_vectors(1)[0], {"title": title, "label": "x"})
    collection.add([item])
    assert collection.get(item.id)["title"] == title
    assert collection.count() == 1


def test_failed_vector_write_leaves_no_trace(collections: Collections) -> None:
    collection = collections.create("rollback")
    collection.add(entries(5))
    bad = [
        Entry(
            content_id("wrong-dim"),
            np.ones(DIM + 3, dtype=np.float32),
            {"title": "bad", "label": "a"},
        )
    ]
    with pytest.raises(Exception):  # noqa: B017 - whatever Milvus raises for a wrong dimension
        collection.add(bad)
    milvus_ids, sql_ids, milvus_count = store_ids(collection)
    assert milvus_ids == sql_ids and len(sql_ids) == 5 and milvus_count == 5


def test_search_never_returns_ids_without_a_ready_record(collections: Collections) -> None:
    collection = collections.create("orphans")
    items = entries(5)
    collection.add(items)
    orphan = unit_vectors(1, seed=3)[0]
    collections.storage.vectors.insert(
        collection.physical, [{"id": 42, "vector": orphan.tolist(), "label": "a"}]
    )
    matches = collection.search(orphan[None, :], top_k=6)[0]
    assert 42 not in {m.id for m in matches} and len(matches) == 5


def test_records_are_looked_up_by_id_and_only_ready_ones_returned(
    storage: Storage, collections: Collections
) -> None:
    """Every search fetches its results' records: by primary key, never by reading every
    ready row (SQLite, which keeps no statistics, did that when the state was in SQL)."""
    collection = collections.create("lookups")
    items = entries(300)
    collection.add(items)
    pending = entries(1, seed=9)[0]
    storage.records.insert_pending(collection.table, [{"id": pending.id, **pending.record}])
    wanted = [e.id for e in items[:20]] + [pending.id]
    engine = storage.records.engine
    statements: list[tuple[str, object]] = []

    def seen(_conn, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        records = collection.records(wanted)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert set(records) == {e.id for e in items[:20]}
    assert records[items[0].id]["title"] == items[0].record["title"]
    assert statements
    with engine.connect() as connection:
        for statement, parameters in statements:
            if engine.name == "sqlite":
                plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
                details = [row[-1] for row in plan]
                assert all("autoindex" in d and "(id=?)" in d for d in details), details
            else:
                plan = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters).mappings()
                assert [row["key"] for row in plan] == ["PRIMARY"], statement


def test_recovery_removes_interrupted_writes(storage: Storage, collections: Collections) -> None:
    collection = collections.create("recover")
    kept = entries(10, seed=1)
    collection.add(kept)
    # What a process killed between the two writes leaves: pending rows, some with vectors.
    interrupted = entries(6, seed=2)
    storage.records.insert_pending(
        collection.table, [{"id": e.id, **e.record} for e in interrupted]
    )
    storage.vectors.insert(
        collection.physical,
        [{"id": e.id, "vector": e.vector.tolist(), "label": "a"} for e in interrupted[:3]],
    )
    assert collection.count() == 10  # pending rows are not visible
    assert storage.records.ids_in_state(collection.table, PENDING)

    Collections(storage, "test", SPEC).recover()  # what the next start does
    milvus_ids, sql_ids, milvus_count = store_ids(collection)
    assert milvus_ids == sql_ids == {e.id for e in kept} and milvus_count == 10
    added, duplicates = collection.add(kept + interrupted)  # re-running the load
    assert len(added) == 6 and len(duplicates) == 10
    assert store_ids(collection)[2] == 16


def test_interrupted_drop_is_finished_on_recovery(
    storage: Storage, collections: Collections
) -> None:
    collection = collections.create("halfdropped")
    collection.add(entries(3))
    collections.registry.set_state(collection.physical, "dropping")
    storage.vectors.drop(collection.physical)  # killed right after the Milvus drop
    Collections(storage, "test", SPEC).recover()
    assert collections.names() == []
    assert not storage.records.table_exists(collection.physical)


def test_index_build_params_are_kept(storage: Storage, collections: Collections) -> None:
    collection = collections.create("indexed")
    built = storage.vectors.client.describe_index(collection.physical, "vector")
    params = built.get("params", built)
    assert built["index_type"] == "HNSW"
    assert str(params["M"]) == "8" and str(params["efConstruction"]) == "64"


def test_binary_vectors_need_a_server(storage: Storage, backend: Backend) -> None:
    spec = CollectionSpec(
        index=VectorIndex(
            dim=64,
            kind="binary",
            metric="JACCARD",
            index_type="BIN_FLAT",
            build_params={},
            search_params={},
        ),
        fields=(RecordField("title", String(50)),),
    )
    fingerprints = Collections(storage, "bits", spec)
    if backend.name == "lite":
        with pytest.raises(UnsupportedFeature, match="BINARY_VECTOR"):
            fingerprints.create("fp")
        assert fingerprints.names() == []
        return
    collection = fingerprints.create("fp")
    bits = np.random.default_rng(0).integers(0, 2, size=(20, 64)).astype(bool)
    packed = [np.packbits(b).tobytes() for b in bits]
    collection.add([Entry(content_id(p), p, {"title": f"fp{i}"}) for i, p in enumerate(packed)])
    matches = collection.search([packed[4]], top_k=3)[0]
    assert matches[0].record["title"] == "fp4" and matches[0].score == pytest.approx(1.0)
    # Jaccard similarity computed by hand agrees with Milvus.
    other = bits[matches[1].record["title"] and int(matches[1].record["title"][2:])]
    expected = (bits[4] & other).sum() / (bits[4] | other).sum()
    assert matches[1].score == pytest.approx(expected, abs=1e-5)


def test_item_files_follow_their_items(storage: Storage, collections: Collections) -> None:
    collection = collections.create("files")
    media = storage.media
    assert media is not None
    items = [
        dataclasses.replace(e, files={"original": f"bytes {i}".encode(), "thumbnail": b"small"})
        for i, e in enumerate(entries(4))
    ]
    collection.add(items)
    assert collection.media_path(items[1].id, "original").read_bytes() == b"bytes 1"
    collection.delete([items[1].id])
    assert media.item_ids(collection.physical) == {e.id for e in items} - {items[1].id}
    with pytest.raises(NotFound):
        collection.media_path(items[1].id, "original")

    bad = [
        Entry(
            content_id("bad"),
            np.ones(DIM + 1, dtype=np.float32),
            {"title": "x", "label": "a"},
            files={"original": b"x"},
        )
    ]
    with pytest.raises(Exception):  # noqa: B017 - the wrong dimension, whatever Milvus raises
        collection.add(bad)
    assert bad[0].id not in media.item_ids(collection.physical)  # rolled back

    media.write(collection.physical, 777, "original", b"written just before a crash")
    Collections(storage, "test", SPEC).recover()
    assert media.item_ids(collection.physical) == {items[0].id, items[2].id, items[3].id}

    collections.drop("files")
    assert media.item_ids(collection.physical) == set()


def test_an_item_left_pending_by_a_failed_rollback_can_be_added_again(
    storage: Storage, collections: Collections
) -> None:
    collection = collections.create("stuck")
    items = entries(4)
    # What a write leaves when Milvus went down mid-batch and the rollback failed too.
    storage.records.insert_pending(collection.table, [{"id": e.id, **e.record} for e in items])
    added, duplicates = collection.add(items)
    assert sorted(added) == sorted(e.id for e in items) and duplicates == []
    assert collection.count() == 4
    milvus_ids, sql_ids, milvus_count = store_ids(collection)
    assert milvus_ids == sql_ids and milvus_count == 4


def test_registry_from_an_earlier_version_gains_the_options_column(
    storage: Storage, collections: Collections
) -> None:
    """A database made before collections had options still opens, and its rows read as {}."""
    collections.create("older")
    records = storage.records
    with records.engine.begin() as connection:
        connection.execute(text("ALTER TABLE search_collections DROP COLUMN options"))
    assert "options" not in {
        c["name"] for c in inspect(records.engine).get_columns("search_collections")
    }
    records.create_system_tables()  # what the next start does
    assert "options" in {
        c["name"] for c in inspect(records.engine).get_columns("search_collections")
    }
    reopened = Collections(storage, "test", SPEC)
    assert reopened.get("older").options == {} and reopened.get("older").spec == SPEC


def test_concurrent_searches_go_to_milvus_together_and_are_answered_as_alone(
    storage: Storage, collections: Collections
) -> None:
    """One-vector searches waiting while one runs are sent as one search per collection,
    limit and filter (``nq > 1``); each caller gets what it gets alone, and a bad vector
    fails only its own search."""
    collection = collections.create("together")
    collection.add(entries(120, label="a") + entries(80, seed=1, label="b"))
    queries = unit_vectors(24, seed=5)
    kinds = [({}, 5), ({"label": "a"}, 5), ({}, 10)]  # three ways to ask: three batches

    def search(i: int) -> list[list[tuple[int, float]]] | Exception:
        where, limit = kinds[i % 3]
        vector = queries[i] if i != 4 else np.ones(DIM + 1, dtype=np.float32)  # a bad one
        try:
            hits = collection.search(vector[None, :], limit, where=where or None)
        except Exception as error:
            return error
        return [[(m.id, m.score) for m in row] for row in hits]

    alone = [search(i) for i in range(24)]
    sent: list[int] = []  # the number of vectors of each search Milvus got
    real = storage.vectors.client.search
    release = threading.Event()

    def counted(*args: Any, **kwargs: Any) -> Any:
        sent.append(len(kwargs["data"]))
        if len(sent) == 1:
            release.wait(30)  # hold the first until every other one is waiting
        return real(*args, **kwargs)

    storage.vectors.client.search = counted  # type: ignore[method-assign]
    try:
        with ThreadPoolExecutor(24) as pool:
            first = pool.submit(search, 0)
            while not sent:
                time.sleep(0.001)
            others = [pool.submit(search, i) for i in range(1, 24)]
            while storage.vectors._searches is not None and storage.vectors._searches.waiting < 23:
                time.sleep(0.001)
            release.set()
            together = [first.result(30), *(f.result(30) for f in others)]
    finally:
        release.set()
        storage.vectors.client.search = real  # type: ignore[method-assign]
    # The held one alone; then the first kind waiting, whose batch fails on the bad vector
    # and is searched again one by one; then the other two kinds, each as one search.
    assert sent == [1, 8, *[1] * 8, 8, 7]
    assert isinstance(alone[4], Exception) and isinstance(together[4], Exception)
    for i in range(24):
        if i == 4:
            continue
        assert not isinstance(together[i], Exception)
        assert [[h for h, _ in row] for row in together[i]] == [
            [h for h, _ in row] for row in alone[i]
        ]
        np.testing.assert_allclose(
            [s for row in together[i] for _, s in row],
            [s for row in alone[i] for _, s in row],
            atol=1e-6,
        )
