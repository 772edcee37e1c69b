"""Store digests and snapshots: "did anything change?" in one comparable value.

A digest is a sha256 over the node's outbox (sequence, gid and the
canonical JSON of each stored transaction, in outbox order), every read
model table (rows in a fixed order) and the pending area. Node-local
bookkeeping that a refused request may legitimately touch (the seen node
token ids, a peer's last error) is left out.

``query`` is any ``(sql) -> list of row dicts``: ``NodeProcess.query`` for a
running node, ``node_query(node)`` for one opened in the test process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import orjson

from domain.transaction import canonical
from projections.projector import MODULES, decode

Query = Callable[[str], list[dict[str, Any]]]
VIEW_TABLES = tuple(t for module in MODULES for t in module.TABLES)


def node_query(node: Any) -> Query:
    def query(sql: str) -> list[dict[str, Any]]:
        with node.db.read() as cur:
            return cur.execute(sql).fetchall()

    return query


def events_table(query: Query) -> str:
    """The event store's table: ``stored_events`` on SQLite, ``<app>_events`` on PostgreSQL."""
    try:
        rows = query("SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, -7) = '_events'")
    except Exception:  # noqa: BLE001 - not SQLite: ask PostgreSQL's catalogue
        rows = query("SELECT table_name AS name FROM information_schema.tables "
                     "WHERE table_schema = 'public' AND right(table_name, 7) = '_events'")
    names = [r["name"] for r in rows]
    assert len(names) == 1, f"expected one event table, found {names}"
    return names[0]


def _rows(query: Query, table: str) -> list[dict[str, Any]]:
    rows = query(f"SELECT * FROM {table}")
    plain = [{k: _plain(v) for k, v in r.items()} for r in rows]
    return sorted(plain, key=lambda r: orjson.dumps(r, option=orjson.OPT_SORT_KEYS))


def _plain(value: Any) -> Any:
    if isinstance(value, memoryview | bytearray):
        return bytes(value).hex()
    if isinstance(value, bytes):
        return value.hex()
    return value


def snapshot(query: Query, *, tables: tuple[str, ...] = VIEW_TABLES) -> dict[str, Any]:
    """The stored transactions (canonical, in outbox order), every view and the pending area."""
    events = query(f"SELECT state FROM {events_table(query)}")
    txs = sorted((decode(bytes(r["state"])) for r in events), key=lambda tx: tx["gid"])
    order = [r["gid"] for r in query("SELECT gid FROM transactions ORDER BY seq")]
    return {
        "transactions": [canonical(tx).decode() for tx in txs],
        "outbox order": order,
        "views": {t: _rows(query, t) for t in tables},
        "pending": _rows(query, "pending"),
    }


def digest(query: Query) -> str:
    return hashlib.sha256(orjson.dumps(snapshot(query), option=orjson.OPT_SORT_KEYS)).hexdigest()


def views(query: Query, tables: tuple[str, ...] = VIEW_TABLES) -> dict[str, list[dict[str, Any]]]:
    return {t: _rows(query, t) for t in tables}
