"""How collections keep their full-text index, on both backend pairs: written with the
``ready`` state, removed with the rows and the collection, repaired by recovery.

A crash between the rows' ``ready`` update and the index write is in test_consistency.py.
"""

import numpy as np
import pytest
from sqlalchemy import String, Text, inspect

from common.collection import Collection, Collections, CollectionSpec, Entry, Storage, content_id
from common.errors import InvalidInput
from common.record_store import READY, RecordField
from common.vector_store import VectorIndex

DIM = 8
SPEC = CollectionSpec(
    index=VectorIndex(dim=DIM, metric="COSINE", index_type="FLAT", build_params={}),
    fields=(RecordField("title", String(200)), RecordField("body", Text())),
    fulltext_fields=("title", "body"),
)
TEXTS = [
    ("Tyre pressure for a road bike", "Road tyres usually run at 80 to 100 psi."),
    ("Presta or Schrader valve?", "A Presta valve is thinner and has a lock nut."),
    ("绿茶用多少度的水", "绿茶适合八十度左右的水。水太烫会把茶叶泡熟。"),
    ("How to store coffee beans", "Keep them airtight, away from light and heat."),
]


def entries() -> list[Entry]:
    vectors = np.random.default_rng(0).normal(size=(len(TEXTS), DIM)).astype(np.float32)
    return [
        Entry(content_id(title), vector, {"title": title, "body": body})
        for (title, body), vector in zip(TEXTS, vectors, strict=True)
    ]


def found(collection: Collection, query: str) -> list[str]:
    return [match.record["title"] for match in collection.lexical_search(query, 10)]


def indexed_equals_ready(collection: Collection) -> bool:
    assert collection.lexical is not None
    ready = collection.storage.records.ids_in_state(collection.table, READY)
    return collection.lexical.ids() == set(ready)


@pytest.fixture
def collections(storage: Storage) -> Collections:
    return Collections(storage, "test", SPEC)


def test_added_items_are_found_by_their_words(collections: Collections) -> None:
    collection = collections.create("things")
    added, _ = collection.add(entries())
    assert len(added) == len(TEXTS) and indexed_equals_ready(collection)
    assert found(collection, "presta")[0] == "Presta or Schrader valve?"
    assert found(collection, "psi")[0] == "Tyre pressure for a road bike"  # a word of the body
    assert found(collection, "泡绿茶的水温")[0] == "绿茶用多少度的水"
    assert found(collection, "kombucha") == []
    match = collection.lexical_search("valve", 1)[0]
    assert match.record["body"].startswith("A Presta") and match.score > 0
    with pytest.raises(InvalidInput, match="no words"):
        collection.lexical_search(' "?!* -', 10)


def test_a_duplicate_keeps_its_first_text(collections: Collections) -> None:
    collection = collections.create("things")
    collection.add(entries())
    first = entries()[0]
    again = Entry(first.id, first.vector, {"title": "other words", "body": "entirely"})
    assert collection.add([again]) == ([], [first.id])
    assert found(collection, "entirely") == [] and indexed_equals_ready(collection)


def test_a_pending_row_is_not_in_the_index(collections: Collections) -> None:
    collection = collections.create("things")
    pending = entries()[0]
    collection.storage.records.insert_pending(
        collection.table, [{"id": pending.id, **pending.record}]
    )
    assert found(collection, "presta") == [] and found(collection, "tyre") == []
    collection.recover()
    assert indexed_equals_ready(collection) and collection.count() == 0


def test_delete_and_drop_remove_the_index(collections: Collections, storage: Storage) -> None:
    collection = collections.create("things")
    items = entries()
    collection.add(items)
    assert collection.delete([items[1].id, items[2].id]) == sorted([items[1].id, items[2].id])
    assert found(collection, "presta") == [] and found(collection, "绿茶") == []
    assert found(collection, "coffee") == ["How to store coffee beans"]
    assert indexed_equals_ready(collection)
    index_table = f"{collection.physical}__text"
    assert index_table in inspect(storage.records.engine).get_table_names()
    collections.drop("things")
    assert index_table not in inspect(storage.records.engine).get_table_names()
    again = collections.create("things")  # a new collection of the same name starts empty
    assert again.lexical is not None and again.lexical.ids() == set()
    assert found(again, "coffee") == []


def test_recovery_builds_a_missing_index_and_removes_strays(collections: Collections) -> None:
    collection = collections.create("things")
    items = entries()
    collection.add(items)
    assert collection.lexical is not None
    collection.lexical.drop()  # as a collection made before its app indexed text
    collections.recover()
    assert indexed_equals_ready(collection)
    assert found(collection, "presta") == ["Presta or Schrader valve?"]
    stray = 12345  # an id with no ready row
    collection.lexical.add([(stray, "presta stray words")])
    collections.recover()
    assert indexed_equals_ready(collection) and stray not in collection.lexical.ids()


def test_a_collection_without_fulltext_fields_has_no_index(storage: Storage) -> None:
    plain = Collections(storage, "plain", CollectionSpec(SPEC.index, SPEC.fields))
    collection = plain.create("things")
    collection.add(entries())
    assert collection.lexical is None
    assert f"{collection.physical}__text" not in inspect(storage.records.engine).get_table_names()
