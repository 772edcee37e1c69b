"""Full-text search over items: title, body and tag names, ranked, with highlights.

One row per live item, from the state the documents view shows (its primary head), kept in step by the
projector in the same transaction as the other views and rebuilt with them. The store's own engine does the
work: SQLite's FTS5 (``bm25`` ranking, ``snippet`` highlights) and PostgreSQL's ``tsvector`` (``ts_rank``,
``ts_headline``) with a text search configuration chosen by the node's ``search_language`` (``dutch``,
``english``, ``simple``, ... any the server has), which the store keeps: every process on it indexes and
searches alike, and asking for another one re-indexes. SQLite has no Dutch stemmer: there, words match as
written (case and accents folded) and, for English, with the Porter stemmer.

Each item's row also holds what the visibility rule and the list filters read of it (``scope``, ``author``,
``origin``, and the tag gids as ``tag_gids``, as the documents view keeps them): a search ranks, filters and
cuts a page in the index, and reads the documents view only for the page (a common word matches thousands of
items, and a lookup of each in ``documents`` cost most of the time of a search). On PostgreSQL these are
columns of ``item_search``; on SQLite they are a plain table, ``item_search_rows``, whose ``id`` is the FTS5
row's rowid: FTS5 reads a row's unindexed columns with its whole text, three times slower than a join.

Tag names are indexed only for tags every editor may see (``DOMAIN``, ``NETWORK``, ``PUBLIC``): an
``OWNER`` or ``TEAM`` tag's name would otherwise find its items for editors who may not see the tag. A
tag's rename or deletion re-indexes the items that carry it. Matches come back with the title and a
fragment of the body in which each matched word sits between ``HIT`` and ``END`` marks, for the caller to
escape and mark up.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from domain.visibility import EVERY_EDITOR_SCOPES
from projections.heads import loads
from projections.store import Cursor, chunks, rows_by_key

TABLES = ["item_search", "item_search_rows"]  # any store kind's: what a new layout drops
CONFIG_DDL = "CREATE TABLE IF NOT EXISTS search_config (id INTEGER PRIMARY KEY, language TEXT NOT NULL)"
DEFAULT = "simple"
HIT, END = "\ue010", "\ue011"  # around each matched word in a highlight (private use: not in any text)
_WORD = re.compile(r"\w+", re.UNICODE)
MAX_WORDS = 16  # of a query
LANGUAGE = re.compile(r"^[a-z_]{1,40}$")  # a PostgreSQL text search configuration name
_ACCESS = ("scope", "author", "origin", "tag_gids")  # of the item, for visibility and the filters


def language_of(cur: Cursor, requested: str | None) -> tuple[str, bool]:
    """The index's language and whether it changed: the store keeps the one it was built in, so every process
    on the store (a server, a command) searches and indexes alike; a ``requested`` other one replaces it (the
    caller then rebuilds the index)."""
    cur.execute(CONFIG_DDL)
    row = cur.execute("SELECT language FROM search_config WHERE id = 1").fetchone()
    stored = row["language"] if row else None
    language = requested or stored or DEFAULT
    if language != stored:
        cur.execute("INSERT INTO search_config (id, language) VALUES (1, ?) "
                    "ON CONFLICT (id) DO UPDATE SET language = excluded.language", (language,))
    return language, stored is not None and language != stored


class SearchIndex:
    """The ``item_search`` table on one store kind (``dialect``) in one language."""

    def __init__(self, dialect: str, language: str = "simple") -> None:
        if not LANGUAGE.match(language):
            raise ValueError(f"not a text search configuration name: {language!r}")
        self.dialect, self.language = dialect, language

    @property
    def tables(self) -> list[str]:
        """This store kind's tables of the index."""
        return TABLES if self.dialect == "sqlite" else ["item_search"]

    def ddl(self) -> list[str]:
        if self.dialect == "sqlite":
            tokenizer = "porter unicode61 remove_diacritics 2" if self.language == "english" else (
                "unicode61 remove_diacritics 2")
            return ["CREATE TABLE IF NOT EXISTS item_search_rows (id INTEGER PRIMARY KEY, item_gid TEXT NOT NULL "
                    f"UNIQUE, {', '.join(f'{c} TEXT NOT NULL' for c in _ACCESS)})",
                    f"CREATE VIRTUAL TABLE IF NOT EXISTS item_search USING fts5(title, body, tags, "
                    f"tokenize = '{tokenizer}')"]
        return ["CREATE TABLE IF NOT EXISTS item_search (item_gid TEXT PRIMARY KEY, title TEXT NOT NULL, "
                f"body TEXT NOT NULL, tags TEXT NOT NULL, {', '.join(f'{c} TEXT NOT NULL' for c in _ACCESS)}, "
                "document TSVECTOR NOT NULL)",
                "CREATE INDEX IF NOT EXISTS item_search_document ON item_search USING GIN (document)"]

    # --- keeping it in step ------------------------------------------------------------------------------
    def update(self, cur: Cursor, touched_items: dict[str, dict[str, Any]], touched_tags: Iterable[str]) -> None:
        """Re-index the items a batch touched (their ``documents`` rows as just written) and those carrying
        a tag it touched (read from the store)."""
        gids = set(touched_items) | self._carrying(cur, set(touched_tags))
        if not gids:
            return
        docs = {**rows_by_key(cur, "documents", "item_gid", gids - set(touched_items)), **touched_items}
        names = self._tag_names(cur, {tag for doc in docs.values() for tag in loads(doc["tags"])})
        rows = [(gid, doc["title"], doc["markdown"], " ".join(names[t] for t in loads(doc["tags"]) if t in names),
                 doc["scope"], doc["author"], doc["origin"], doc["tags"])
                for gid, doc in sorted(docs.items()) if not doc["deleted"]]
        if self.dialect == "sqlite":
            self._write_sqlite(cur, gids, rows)
            return
        for chunk in chunks(gids):
            cur.execute(f"DELETE FROM item_search WHERE item_gid IN ({','.join('?' * len(chunk))})", chunk)
        weighted = " || ".join(f"setweight(to_tsvector('{self.language}', {column}), '{weight}')"
                               for column, weight in (("title", "A"), ("tags", "B"), ("body", "C")))
        cur.insert_rows("item_search", ("item_gid", "title", "body", "tags", *_ACCESS), rows,
                        computed={"document": weighted})

    @staticmethod
    def _write_sqlite(cur: Cursor, gids: set[str], rows: list[tuple[str, ...]]) -> None:
        # The FTS rows go by rowid: a delete naming rowids is a lookup, one with a subquery a slower plan.
        ids = {gid: row["id"] for gid, row in rows_by_key(cur, "item_search_rows", "item_gid", gids).items()}
        for chunk in chunks(ids.values()):
            marks = ",".join("?" * len(chunk))
            cur.execute(f"DELETE FROM item_search WHERE rowid IN ({marks})", chunk)
            cur.execute(f"DELETE FROM item_search_rows WHERE id IN ({marks})", chunk)
        new = [row[0] for row in rows if row[0] not in ids]
        # An item keeps its id; new ones are numbered after those are back in (not into an id just freed).
        cur.executemany(f"INSERT INTO item_search_rows (id, item_gid, {', '.join(_ACCESS)}) VALUES (?, ?, ?, ?, ?, ?)",
                        [(ids.get(gid), gid, *access) for gid, _, _, _, *access in
                         sorted(rows, key=lambda row: row[0] not in ids)])
        if new:
            ids.update((gid, row["id"]) for gid, row in rows_by_key(cur, "item_search_rows", "item_gid", new).items())
        cur.executemany("INSERT INTO item_search (rowid, title, body, tags) VALUES (?, ?, ?, ?)",
                        [(ids[gid], title, body, tags) for gid, title, body, tags, *_ in rows])

    @staticmethod
    def _carrying(cur: Cursor, tags: set[str]) -> set[str]:
        """The items whose current tags include one of ``tags`` (one scan of the documents per 100 tags)."""
        found: set[str] = set()
        ordered = sorted(tags)
        for i in range(0, len(ordered), 100):
            part = ordered[i:i + 100]
            condition = " OR ".join(["tags LIKE ?"] * len(part))
            rows = cur.execute(f"SELECT item_gid FROM documents WHERE {condition}", [f'%"{t}"%' for t in part])
            found.update(row["item_gid"] for row in rows.fetchall())
        return found

    @staticmethod
    def _tag_names(cur: Cursor, tags: set[str]) -> dict[str, str]:
        return {gid: row["name"] for gid, row in rows_by_key(cur, "tags", "tag_gid", tags).items()
                if not row["deleted"] and row["scope"] in EVERY_EDITOR_SCOPES}

    # --- searching ---------------------------------------------------------------------------------------
    def matches(self, text: str) -> tuple[str, list[Any]] | None:
        """A query over ``item_search`` giving ``item_gid``, ``rank`` (lower is better), ``scope``, ``author``,
        ``origin`` and ``tag_gids`` of the items that match ``text`` (every word, each also as a prefix), or None
        when ``text`` has no word."""
        words = _WORD.findall(text)[:MAX_WORDS]
        if not words:
            return None
        if self.dialect == "sqlite":
            query = " ".join('"' + word.replace('"', '""') + '"*' for word in words)
            return (f"SELECT r.item_gid, bm25(item_search, 10.0, 1.0, 5.0) AS rank, "
                    f"{', '.join(f'r.{c}' for c in _ACCESS)} FROM item_search JOIN item_search_rows r "
                    "ON r.id = item_search.rowid WHERE item_search MATCH ?", [query])
        query = " & ".join(f"{word}:*" for word in (w.replace("'", "") for w in words) if word)
        tsquery = f"to_tsquery('{self.language}', ?)"  # ranks as doubles: a real would not round-trip a cursor
        return (f"SELECT item_gid, -CAST(ts_rank(document, {tsquery}) AS DOUBLE PRECISION) AS rank, "
                f"{', '.join(_ACCESS)} FROM item_search WHERE document @@ {tsquery}", [query, query])

    def highlights(self, cur: Cursor, text: str, gids: list[str]) -> dict[str, tuple[str, str]]:
        """(title, body fragment) of each of ``gids`` with the words of ``text`` marked (HIT ... END)."""
        found = self.matches(text)
        if found is None or not gids:
            return {}
        marks = ",".join("?" * len(gids))
        if self.dialect == "sqlite":
            rows = cur.execute(
                f"SELECT r.item_gid, highlight(item_search, 0, '{HIT}', '{END}') AS title, "
                f"snippet(item_search, 1, '{HIT}', '{END}', '…', 24) AS body FROM item_search JOIN item_search_rows r "
                f"ON r.id = item_search.rowid WHERE item_search MATCH ? AND r.item_gid IN ({marks})",
                [found[1][0], *gids]).fetchall()
        else:
            options = f"StartSel={HIT}, StopSel={END}, MaxWords=24, MinWords=8, MaxFragments=1"
            query = f"to_tsquery('{self.language}', ?)"
            rows = cur.execute(
                f"SELECT item_gid, ts_headline('{self.language}', title, {query}, 'HighlightAll=true, "
                f"StartSel={HIT}, StopSel={END}') AS title, ts_headline('{self.language}', body, {query}, "
                f"'{options}') AS body FROM item_search WHERE item_gid IN ({marks})",
                [found[1][0], found[1][0], *gids]).fetchall()
        return {row["item_gid"]: (row["title"], row["body"]) for row in rows}
