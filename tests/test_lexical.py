"""The full-text index on both record databases: SQLite FTS5 and InnoDB FULLTEXT (MariaDB).

These hold the index itself to what collections rely on (terms, ranking, operators as
words, Chinese, delete and drop); tests/test_fulltext.py checks how collections write it.
"""

from collections.abc import Iterator

import pytest
from sqlalchemy import inspect

from common.lexical import MAX_TOKEN, LexicalIndex, terms, tokens
from common.record_store import RecordStore
from tests.fixtures import Backend

ROWS = {
    1: "How do I water tomato plants in a heatwave?",
    2: "When should Solanum lycopersicum seedlings be transplanted?",
    3: "What is an AI model card?",
    4: "番茄幼苗什么时候移栽\uff1f",
    5: "怎样给花园里的玫瑰浇水",
    6: "Which tools prune an apple tree?",
}


def test_terms_are_words_and_cjk_pairs() -> None:
    assert terms("\uff37ater the TOMATOES, now!") == ["water", "the", "tomatoes", "now"]
    assert terms("番茄幼苗") == ["番茄", "茄幼", "幼苗"]
    assert terms("用AI给番茄浇水") == ["用", "ai", "给番", "番茄", "茄浇", "浇水"]
    assert terms('"tomato*" NEAR( a OR -b') == ["tomato", "near", "a", "or", "b"]
    assert terms(" \t\x00 ,;!") == []
    words = "a 番 é x_y " + "щ" * 40
    assert all(t.isascii() and t.isalnum() and 3 <= len(t) <= MAX_TOKEN for t in tokens(words))


@pytest.fixture
def index(backend: Backend) -> Iterator[LexicalIndex]:
    records = RecordStore(backend.sql_url)
    lexical = LexicalIndex(records, "qa__faq")
    lexical.create()
    lexical.add(ROWS.items())
    yield lexical
    records.close()


def ids(found: list[tuple[int, float]]) -> list[int]:
    return [item_id for item_id, _ in found]


def test_a_rare_exact_term_ranks_its_row_first(index: LexicalIndex) -> None:
    assert ids(index.search("solanum lycopersicum", 3))[0] == 2
    assert ids(index.search("tomato", 3)) == [1]
    found = index.search("water tomato", 6)
    assert ids(found)[0] == 1 and found == sorted(found, key=lambda f: -f[1])


def test_short_words_and_stopwords_are_searchable(index: LexicalIndex) -> None:
    assert ids(index.search("AI", 3)) == [3]  # shorter than InnoDB's minimum token size
    assert 1 in ids(index.search("how", 6))  # in InnoDB's built-in stopword list


def test_chinese_is_found_by_its_words(index: LexicalIndex) -> None:
    assert ids(index.search("番茄什么时候移栽", 3))[0] == 4
    assert ids(index.search("玫瑰", 3)) == [5]
    assert ids(index.search("浇水", 6)) == [5]


@pytest.mark.parametrize(
    "query",
    ['"', '"tomato', "tomato*", "NEAR(tomato water)", "zz OR", "-tomato", "tomato)", "\x00"],
)
def test_fts_operators_are_words_or_nothing(index: LexicalIndex, query: str) -> None:
    found = ids(index.search(query, 6))
    assert found == ([1] if "tomato" in query else [])


def test_a_long_word_in_any_script_is_found(index: LexicalIndex) -> None:
    word = "электроэнергетическаясистема"  # 28 letters: its hex is longer than InnoDB indexes
    index.add([(7, f"the {word} grid")])
    assert ids(index.search(word, 3)) == [7]


def test_delete_and_drop(index: LexicalIndex) -> None:
    index.delete([1, 4])
    assert index.ids() == {2, 3, 5, 6}
    assert index.search("tomato", 3) == [] and index.search("番茄", 3) == []
    index.add([(2, "something else entirely")])  # an indexed id keeps its text
    assert ids(index.search("solanum", 3)) == [2]
    index.drop()
    assert "qa__faq__text" not in inspect(index.engine).get_table_names()
