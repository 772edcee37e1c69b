"""Open conflicts: items with more than one head, and since when.

Fed by the documents view with the heads of every item a batch touched: an
item enters the table when it gets a second head and leaves it when a merge
names all heads. ``since`` is the ``created_at`` of the transaction that
split the item (``domain.review.conflict_since``, read from the DAG in the
transactions table, which the projector fills first), so it is the same on
every node and after a rebuild, whatever the arrival order and batching.
"""

from __future__ import annotations

from typing import Any

from domain.review import conflict_since
from projections.heads import HeadRow, dumps, loads
from projections.store import Cursor, chunks

DDL = [
    "CREATE TABLE IF NOT EXISTS conflicts ("
    "item_gid TEXT PRIMARY KEY, heads TEXT NOT NULL, since TEXT NOT NULL, seq BIGINT NOT NULL)",
]
TABLES = ["conflicts"]


def update(cur: Cursor, touched: dict[str, HeadRow], seqs: dict[str, int]) -> None:
    if not touched:
        return
    upserts, settled = [], []
    for key in sorted(touched):
        heads = touched[key].gids
        if len(heads) > 1:
            upserts.append((key, dumps(heads), _since(cur, key, heads), seqs[key]))
        else:
            settled.append(key)
    cur.executemany(
        "INSERT INTO conflicts (item_gid, heads, since, seq) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (item_gid) DO UPDATE SET heads = excluded.heads, since = excluded.since, seq = excluded.seq",
        upserts,
    )
    # Whether or not they were open: a delete of no row costs an index probe, and asking first a round trip.
    for chunk in chunks(settled):
        cur.execute(f"DELETE FROM conflicts WHERE item_gid IN ({','.join('?' * len(chunk))})", chunk)


def _since(cur: Cursor, item_gid: str, heads: list[str]) -> str:
    rows = cur.execute("SELECT gid, parents, created_at FROM transactions WHERE entity_gid = ?",
                       (item_gid,)).fetchall()
    parents = {row["gid"]: loads(row["parents"]) for row in rows}
    return conflict_since(parents, {row["gid"]: row["created_at"] for row in rows}, heads)


def list_open(cur: Cursor) -> list[dict[str, Any]]:
    rows = cur.execute("SELECT * FROM conflicts ORDER BY since, item_gid").fetchall()
    return [dict(row, heads=loads(row["heads"])) for row in rows]
