"""The outbox index and history: one row per stored transaction.

Maps gid -> sequence (the node's outbox order) with the transaction's
metadata, so history DAGs, outbox filtering and "after gid X" pages are
answered by index.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from projections.heads import dumps, loads
from projections.store import Cursor

DDL = [
    "CREATE TABLE IF NOT EXISTS transactions ("
    "seq BIGINT PRIMARY KEY, gid TEXT NOT NULL UNIQUE, entity TEXT NOT NULL, "
    "entity_gid TEXT NOT NULL, kind TEXT NOT NULL, parents TEXT NOT NULL, author TEXT NOT NULL, "
    "origin TEXT NOT NULL, created_at TEXT NOT NULL, scope TEXT NOT NULL, checksum TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS transactions_by_entity ON transactions (entity_gid, seq)",
]
TABLES = ["transactions"]
FIELDS = ("gid", "entity", "entity_gid", "kind", "author", "origin", "created_at", "scope", "checksum")


def process(cur: Cursor, events: Sequence[tuple[int, dict[str, Any]]]) -> None:
    rows = [(seq, *(tx[f] for f in FIELDS), dumps(tx["parents"])) for seq, tx in events]
    cur.insert_rows("transactions", ("seq", *FIELDS, "parents"), rows)


def history(cur: Cursor, entity_gid: str) -> list[dict[str, Any]]:
    rows = cur.execute("SELECT * FROM transactions WHERE entity_gid = ? ORDER BY seq", (entity_gid,)).fetchall()
    return [dict(row, parents=loads(row["parents"])) for row in rows]


def count(cur: Cursor) -> int:
    return int(cur.execute("SELECT COUNT(*) AS n FROM transactions").fetchone()["n"])
