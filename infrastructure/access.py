"""Who may see what, as the read models know it: the current scope of items and
tags, the live shares of items, and the entity histories behind transactions.

The outbox filters what it serves with these answers. This is read-model SQL
(on ``documents``, ``tags``, ``shares`` and ``transactions``): it sits behind
one small class so that it can move to the projections' query side whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from domain import history
from infrastructure.persistence import Cursor, Database

_ENTITY_VIEWS = (("documents", "item_gid"), ("shares", "share_gid"), ("attachments", "attachment_gid"),
                 ("tags", "tag_gid"))
CHUNK = 500  # values per ``IN (...)``: under SQLite's variable limit


@dataclass(frozen=True)
class ItemAccess:
    """Items' current scopes and the peers a live share names (only the creator's shares count)."""

    scopes: dict[str, str] = field(default_factory=dict)
    shared: dict[str, set[str]] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)


class AccessReader:
    def __init__(self, db: Database) -> None:
        self.db = db

    def item_access(self, items: Iterable[str]) -> ItemAccess:
        access = ItemAccess()
        with self.db.read() as cur:  # one query: a row per live share of the item, or one with no peer
            # Only the item's creator may share it: a share from anyone else opens nothing.
            rows = _rows(cur, "SELECT d.item_gid AS item_gid, d.scope AS scope, d.origin AS origin, s.peer AS peer "
                              "FROM documents d LEFT JOIN shares s ON s.item_gid = d.item_gid AND s.revoked = 0 "
                              "AND s.origin = d.origin WHERE d.item_gid IN ({marks})", items)
        for r in rows:
            access.scopes[r["item_gid"]] = r["scope"]
            access.owners[r["item_gid"]] = r["origin"]
            if r["peer"] is not None:
                access.shared.setdefault(r["item_gid"], set()).add(r["peer"])
        return access

    def tag_scopes(self, tags: Iterable[str]) -> dict[str, str]:
        with self.db.read() as cur:
            return {r["tag_gid"]: r["scope"]
                    for r in _rows(cur, "SELECT tag_gid, scope FROM tags WHERE tag_gid IN ({marks})", tags)}

    def tags_named(self, names: Iterable[str]) -> set[str]:
        """The gids of the tags (live or not) whose name is one of ``names`` (case folded)."""
        with self.db.read() as cur:
            return set(_column(cur, "SELECT tag_gid FROM tags WHERE LOWER(name) IN ({marks})",
                               {n.lower() for n in names}))

    def item_tags(self, items: Iterable[str]) -> dict[str, set[str]]:
        """Items' current tag gids."""
        with self.db.read() as cur:
            return {r["item_gid"]: set(json.loads(r["tags"]))
                    for r in _rows(cur, "SELECT item_gid, tags FROM documents WHERE item_gid IN ({marks})", items)}

    def attachments_with(self, sha256: str) -> list[tuple[str, str]]:
        """(attachment, item) of the live attachments whose bytes hash to ``sha256`` (made by the item's owner)."""
        with self.db.read() as cur:
            rows = cur.execute("SELECT a.attachment_gid, a.item_gid FROM attachments a JOIN documents d "
                               "ON d.item_gid = a.item_gid WHERE a.sha256 = ? AND a.deleted = 0 "
                               "AND a.origin = d.origin LIMIT 100", (sha256,)).fetchall()
        return [(r["attachment_gid"], r["item_gid"]) for r in rows]

    def heads_of(self, entities: Iterable[str]) -> list[str]:
        """The current heads of those of these entities stored here, read from their views (no aggregate is
        loaded: a sender names the entities)."""
        wanted, heads = set(entities), []
        with self.db.read() as cur:
            for table, key in _ENTITY_VIEWS:
                heads += [gid for r in _rows(cur, f"SELECT heads FROM {table} WHERE {key} IN ({{marks}})", wanted)
                          for gid in json.loads(r["heads"])]
        return heads

    def gid_at(self, seq: int) -> str | None:
        """The gid of the (projected) transaction at outbox position ``seq``."""
        with self.db.read() as cur:
            row = cur.execute("SELECT gid FROM transactions WHERE seq = ?", (seq,)).fetchone()
        return row["gid"] if row else None

    def in_outbox_order(self, gids: Iterable[str]) -> list[str]:
        """Those of these transaction gids that are stored (and projected), in outbox order."""
        with self.db.read() as cur:
            rows = _rows(cur, "SELECT seq, gid FROM transactions WHERE gid IN ({marks})", gids)
        return [r["gid"] for r in sorted(rows, key=lambda r: r["seq"])]

    def entity_histories(self, gids: Iterable[str], limit: int, have: Iterable[str] = ()) -> list[str]:
        """The first ``limit`` gids (in outbox order) of the histories of these transactions' entities, but
        for the transactions in ``have`` and their ancestors (the caller holds them): a history longer than
        ``limit`` comes a part at a time, each asked with what the caller holds by then.

        An item's history includes its shares and attachments, and theirs include the item: each becomes
        visible to a peer together with the others.
        """
        with self.db.read() as cur:
            entities = set(_column(cur, "SELECT entity_gid FROM transactions WHERE gid IN ({marks})", gids))
            items = entities | set(_column(cur, "SELECT item_gid FROM shares WHERE share_gid IN ({marks})", entities))
            items |= set(_column(cur, "SELECT item_gid FROM attachments WHERE attachment_gid IN ({marks})", entities))
            entities |= items | set(_column(cur, "SELECT share_gid FROM shares WHERE item_gid IN ({marks})", items))
            entities |= set(_column(cur, "SELECT attachment_gid FROM attachments WHERE item_gid IN ({marks})", items))
            rows = _rows(cur, "SELECT seq, gid, parents FROM transactions WHERE entity_gid IN ({marks})", entities)
        held = history.ancestors_of({r["gid"]: json.loads(r["parents"]) for r in rows}, have) if have else set()
        return [r["gid"] for r in sorted(rows, key=lambda r: r["seq"]) if r["gid"] not in held][:limit]


def _rows(cur: Cursor, sql: str, values: Iterable[str]) -> list[dict[str, Any]]:
    """Rows of ``sql`` (one ``IN ({marks})``) over ``values``, in chunks."""
    ordered = sorted(set(values))
    out: list[dict[str, Any]] = []
    for i in range(0, len(ordered), CHUNK):
        chunk = ordered[i : i + CHUNK]
        out.extend(cur.execute(sql.format(marks=",".join("?" * len(chunk))), chunk).fetchall())
    return out


def _column(cur: Cursor, sql: str, values: Iterable[str]) -> list[Any]:
    return [next(iter(row.values())) for row in _rows(cur, sql, values)]
