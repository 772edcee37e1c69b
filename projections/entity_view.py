"""The common machinery of the current-state read models (items, tags, shares).

A view row holds the state of the entity's *primary* head (the head with the
latest ``(created_at, gid)``, as in ``domain/entity.py``) in ordinary
columns, the list of all heads, and the summaries of the other heads (with
their payloads) in ``other_heads``, so a later transaction that removes the
primary head can fall back on another head without reading the event store.

Events are processed in batches: the rows of every entity the batch touches
are read once, advanced in memory event by event, and written back once.
The same code serves the incremental updates (small batches) and the
rebuild (large ones), so both give the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from domain.entity import head_summary, latest

Heads = dict[str, dict[str, Any]]  # head gid -> summary (gid, kind, created_at, ..., payload)


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def loads(text: str | None) -> Any:
    return orjson.loads(text) if text else None


def advance(heads: Heads, tx: dict[str, Any]) -> Heads:
    """The heads after a transaction: its parents stop being heads, it becomes one."""
    for parent in tx["parents"]:
        heads.pop(parent, None)
    heads[tx["gid"]] = head_summary(tx)
    return heads


class EntityView:
    """Subclasses say which entity, which table and how a head maps to columns."""

    entity = ""
    table = ""
    key = ""
    columns: tuple[str, ...] = ()  # entity-specific columns, filled by to_columns()

    def to_columns(self, primary: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def from_columns(self, row: dict[str, Any]) -> dict[str, Any]:
        """The primary head summary stored in a row."""
        raise NotImplementedError

    # --- batch processing --------------------------------------------------
    def process(self, cur: Any, events: Sequence[tuple[int, dict[str, Any]]]) -> dict[str, Heads]:
        mine = [(seq, tx) for seq, tx in events if tx["entity"] == self.entity]
        if not mine:
            return {}
        rows = self._load(cur, {tx["entity_gid"] for _, tx in mine})
        state: dict[str, Heads] = {gid: self._heads_of(row) for gid, row in rows.items()}
        extra: dict[str, dict[str, Any]] = {gid: self._extra_of(row) for gid, row in rows.items()}
        touched: dict[str, int] = {}
        for seq, tx in mine:
            key = tx["entity_gid"]
            heads = state.setdefault(key, {})
            if not heads:
                extra[key] = self.first_columns(tx)
            advance(heads, tx)
            touched[key] = seq
        self._write(cur, {k: (state[k], extra[k], seq) for k, seq in touched.items()})
        return {k: state[k] for k in touched}

    def first_columns(self, tx: dict[str, Any]) -> dict[str, Any]:
        """Columns fixed at creation (origin, creator ...)."""
        return {"origin": tx["origin"], "author": tx["author"], "created_at": tx["created_at"]}

    def _load(self, cur: Any, keys: set[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        ordered = sorted(keys)
        for i in range(0, len(ordered), 500):
            chunk = ordered[i : i + 500]
            marks = ",".join("?" * len(chunk))
            cur.execute(f"SELECT * FROM {self.table} WHERE {self.key} IN ({marks})", chunk)
            for row in cur.fetchall():
                found[row[self.key]] = row
        return found

    def _heads_of(self, row: dict[str, Any]) -> Heads:
        primary = self.from_columns(row)
        heads = {primary["gid"]: primary}
        for other in loads(row["other_heads"]) or []:
            heads[other["gid"]] = other
        return heads

    @staticmethod
    def _extra_of(row: dict[str, Any]) -> dict[str, Any]:
        return {"origin": row["origin"], "author": row["author"], "created_at": row["created_at"]}

    def _write(self, cur: Any, changed: dict[str, tuple[Heads, dict[str, Any], int]]) -> None:
        names = (self.key, *self.columns, "origin", "author", "created_at",
                 "head", "heads", "other_heads", "seq")
        rows = []
        for key, (heads, extra, seq) in changed.items():
            primary = latest(list(heads.values()))
            others = sorted((h for h in heads.values() if h["gid"] != primary["gid"]),
                            key=lambda h: h["gid"])
            cols = self.to_columns(primary)
            rows.append((key, *(cols[c] for c in self.columns), extra["origin"], extra["author"],
                         extra["created_at"], primary["gid"], dumps(sorted(heads)), dumps(others), seq))
        updates = ", ".join(f"{n} = excluded.{n}" for n in names[1:])
        cur.executemany(
            f"INSERT INTO {self.table} ({', '.join(names)}) VALUES ({','.join('?' * len(names))}) "
            f"ON CONFLICT ({self.key}) DO UPDATE SET {updates}",
            rows,
        )


def head_columns(primary: dict[str, Any]) -> dict[str, Any]:
    """Columns every view keeps of its primary head."""
    return {
        "head_kind": primary["kind"],
        "updated_at": primary["created_at"],
        "updated_by": primary["author"],
        "head_origin": primary["origin"],
        "scope": primary["scope"],
        "checksum": primary["checksum"],
    }


HEAD_COLUMNS = ("head_kind", "updated_at", "updated_by", "head_origin", "scope", "checksum")
HEAD_DDL = (
    "origin TEXT NOT NULL, author TEXT NOT NULL, created_at TEXT NOT NULL, "
    "head TEXT NOT NULL, heads TEXT NOT NULL, other_heads TEXT NOT NULL, seq BIGINT NOT NULL, "
    "head_kind TEXT NOT NULL, updated_at TEXT NOT NULL, updated_by TEXT NOT NULL, "
    "head_origin TEXT NOT NULL, scope TEXT NOT NULL, checksum TEXT NOT NULL"
)


def summary_from(row: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "gid": row["head"],
        "kind": row["head_kind"],
        "created_at": row["updated_at"],
        "author": row["updated_by"],
        "origin": row["head_origin"],
        "scope": row["scope"],
        "checksum": row["checksum"],
        "payload": payload,
    }
