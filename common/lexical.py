"""Full-text search kept in the record database, on every backend pair.

Text is cut into **terms** here, the same way for what is indexed and what is asked: words
case-folded (NFKC), and runs of CJK characters as overlapping pairs, since Chinese and
Japanese are written without spaces. Each term is then written as an ASCII token of 3 to 84
letters and digits (``ww`` + an ASCII word, ``wx`` + the hex of any other, ``wh`` + a hash of
a term whose hex would be longer than InnoDB's largest token). So:

* user text never reaches SQL or an FTS query as syntax: a query is a list of such tokens,
  bound as a parameter; ``"``, ``*``, ``NEAR(``, ``OR`` and ``-`` are words or nothing;
* SQLite FTS5 (``ascii`` tokenizer, bm25) and InnoDB FULLTEXT (natural language mode, TF-IDF)
  see the same tokens, with no ngram parser, whose absence on MariaDB would leave Chinese
  unsearchable, and with no loss of the words InnoDB drops: shorter than
  ``innodb_ft_min_token_size`` (3, a server-wide setting) or in its built-in stopword list
  (the index is built with an empty stopword table of its own).

What the MySQL side needs: nothing but InnoDB and its defaults (``innodb_ft_min_token_size``
at most 3, ``innodb_ft_max_token_size`` at least 84); no ngram parser, no server setting.

One index is a table ``<collection>__text`` of (id, body); a collection writes it in the
same transaction as the rows it makes ``ready`` (``common.collection``), so it never holds
an id that is not searchable.
"""

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, Engine, text

from common.record_store import RecordStore

MAX_TERM = 40  # longer words (hashes, run-on strings) are not worth a token
MAX_TOKEN = 84  # innodb_ft_max_token_size's default: longer tokens are not indexed
_WORD = re.compile(r"\w+")
_CJK = re.compile(r"([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+)")
STOPWORDS_TABLE = "search_ft_stopwords"  # empty: InnoDB then removes no word


def terms(value: str) -> list[str]:
    """The terms of ``value``, in order: case-folded words, CJK runs as overlapping pairs."""
    found: list[str] = []
    for word in _WORD.findall(unicodedata.normalize("NFKC", value).casefold()):
        for index, part in enumerate(_CJK.split(word)):
            if not part:
                continue
            if index % 2:  # a CJK run
                found += (
                    [part] if len(part) == 1 else [part[i : i + 2] for i in range(len(part) - 1)]
                )
            elif len(part) <= MAX_TERM:
                found.append(part)
    return found


def token(term: str) -> str:
    """A term as the index stores it: 3 to ``MAX_TOKEN`` ASCII letters and digits."""
    if term.isascii() and term.isalnum():
        return "ww" + term
    encoded = "wx" + term.encode().hex()
    if len(encoded) <= MAX_TOKEN:
        return encoded
    return "wh" + hashlib.blake2b(term.encode(), digest_size=16).hexdigest()


def tokens(value: str) -> list[str]:
    return [token(term) for term in terms(value)]


class LexicalIndex:
    """The full-text index of one collection, in the record database of ``engine``."""

    def __init__(self, records: RecordStore, physical: str) -> None:
        self.records = records
        self.engine: Engine = records.engine
        self.sqlite = self.engine.dialect.name == "sqlite"
        self.table = self.engine.dialect.identifier_preparer.quote(f"{physical}__text")

    def create(self) -> None:
        with self.engine.begin() as connection:
            if self.sqlite:
                connection.execute(
                    text(
                        f"CREATE VIRTUAL TABLE IF NOT EXISTS {self.table} "
                        "USING fts5(body, tokenize='ascii')"
                    )
                )
                return
            connection.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS {STOPWORDS_TABLE} "
                    "(value VARCHAR(30) NOT NULL) ENGINE=InnoDB"
                )
            )
            database = connection.execute(text("SELECT DATABASE()")).scalar_one()
            connection.execute(
                text("SET SESSION innodb_ft_user_stopword_table = :table"),
                {"table": f"{database}/{STOPWORDS_TABLE}"},
            )
            connection.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS {self.table} (id BIGINT PRIMARY KEY, "
                    "body MEDIUMTEXT NOT NULL, FULLTEXT (body)) ENGINE=InnoDB "
                    "DEFAULT CHARSET=ascii"
                )
            )

    def add(self, entries: Iterable[tuple[int, str]], connection: Connection | None = None) -> None:
        """Index each (id, text); an id indexed already keeps its first text. In the
        transaction ``connection`` if given (the one that makes the rows ready)."""
        rows = [{"id": item_id, "body": " ".join(tokens(value))} for item_id, value in entries]
        if not rows:
            return
        if self.sqlite:
            statement = (
                f"INSERT INTO {self.table} (rowid, body) SELECT :id, :body WHERE NOT EXISTS "
                f"(SELECT 1 FROM {self.table} WHERE rowid = :id)"
            )
        else:
            statement = f"INSERT IGNORE INTO {self.table} (id, body) VALUES (:id, :body)"
        with self.records.transaction(connection) as active:
            active.execute(text(statement), rows)

    def delete(self, ids: Sequence[int], connection: Connection | None = None) -> None:
        if not ids:
            return
        key = "rowid" if self.sqlite else "id"
        with self.records.transaction(connection) as active:
            active.execute(
                text(f"DELETE FROM {self.table} WHERE {key} = :id"), [{"id": i} for i in ids]
            )

    def drop(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(text(f"DROP TABLE IF EXISTS {self.table}"))

    def ids(self) -> set[int]:
        key = "rowid" if self.sqlite else "id"
        with self.engine.connect() as connection:
            return set(connection.execute(text(f"SELECT {key} FROM {self.table}")).scalars())

    def search(self, query: str, limit: int) -> list[tuple[int, float]]:
        """The ids whose text best matches the terms of ``query``, best first, with their
        score (bm25 on SQLite, InnoDB's TF-IDF relevance on MySQL: higher is better; the
        two scales differ). No terms, no results."""
        wanted = list(dict.fromkeys(tokens(query)))
        if not wanted:
            return []
        with self.engine.connect() as connection:
            if self.sqlite:
                rows = connection.execute(
                    text(
                        f"SELECT rowid, -bm25({self.table}) AS score FROM {self.table} "
                        f"WHERE {self.table} MATCH :match ORDER BY bm25({self.table}), rowid "
                        "LIMIT :limit"
                    ),
                    {"match": " OR ".join(wanted), "limit": limit},
                )
            else:
                rows = connection.execute(
                    text(
                        "SELECT id, MATCH (body) AGAINST (:words IN NATURAL LANGUAGE MODE) "
                        f"AS score FROM {self.table} WHERE MATCH (body) AGAINST "
                        "(:words IN NATURAL LANGUAGE MODE) ORDER BY score DESC, id LIMIT :limit"
                    ),
                    {"words": " ".join(wanted), "limit": limit},
                )
            return [(int(item_id), float(score)) for item_id, score in rows]


def highlight(value: str, query: str) -> list[tuple[str, bool]]:
    """``value`` cut into pieces that together are the whole text, each marked True if it
    is a word sharing a term with ``query`` (what a result shows as the matching words)."""
    wanted = set(terms(query))
    pieces: list[tuple[str, bool]] = []
    position = 0
    for match in _WORD.finditer(value):
        if match.start() > position:
            pieces.append((value[position : match.start()], False))
        word = match.group()
        pieces.append((word, bool(wanted.intersection(terms(word)))))
        position = match.end()
    if position < len(value):
        pieces.append((value[position:], False))
    return pieces
