"""Fork lineage: which items were forked from which.

One edge (fork, source) per source named in the ``forked_from`` of an
``item.forked`` transaction (the creation of a fork; later changes of an
item do not move it in the lineage). Edges are inserted once per event and
never removed, so replay and rebuild give the same table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from projections.store import Cursor, chunks

DDL = [
    "CREATE TABLE IF NOT EXISTS forks ("
    "item_gid TEXT NOT NULL, source_gid TEXT NOT NULL, PRIMARY KEY (item_gid, source_gid))",
    "CREATE INDEX IF NOT EXISTS forks_by_source ON forks (source_gid, item_gid)",
]
TABLES = ["forks"]


def process(cur: Cursor, events: Sequence[tuple[int, dict[str, Any]]]) -> None:
    rows = [(tx["entity_gid"], source) for _, tx in events if tx["kind"] == "item.forked"
            for source in tx["payload"]["forked_from"]]
    cur.executemany(
        "INSERT INTO forks (item_gid, source_gid) VALUES (?, ?) ON CONFLICT (item_gid, source_gid) DO NOTHING",
        rows,
    )


def forks_of(cur: Cursor, sources: Sequence[str]) -> list[tuple[str, str]]:
    """(fork, source) edges whose source is one of ``sources``."""
    edges: list[tuple[str, str]] = []
    for chunk in chunks(set(sources)):
        rows = cur.execute(
            f"SELECT item_gid, source_gid FROM forks WHERE source_gid IN ({','.join('?' * len(chunk))}) "
            "ORDER BY source_gid, item_gid",
            chunk,
        ).fetchall()
        edges.extend((row["item_gid"], row["source_gid"]) for row in rows)
    return edges
