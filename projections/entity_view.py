"""The common machinery of the current-state read models (items, tags, shares).

A view row holds the columns fixed when the entity was created (origin,
author, created_at), the entity's heads as a ``HeadRow`` (the primary
head's payload in the view's own columns) and the sequence number of the
last transaction that changed it. The deletion column (``removed``:
``deleted``, for a share ``revoked``) and ``scope`` hold the entity's
effective state over all its heads; the primary head's own values are kept
in ``head_removed`` and ``head_scope``.

Events are processed in batches: the rows of every entity the batch touches
are read once, advanced in memory event by event, and written back once.
The same code serves the incremental updates (small batches) and the
rebuild (large ones), so both give the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from projections.heads import HeadRow, Heads, advance
from projections.store import Cursor, rows_by_key

# The columns every entity view has, after its key and its payload columns.
ENTITY_DDL = (
    "origin TEXT NOT NULL, author TEXT NOT NULL, created_at TEXT NOT NULL, "
    "head TEXT NOT NULL, heads TEXT NOT NULL, other_heads TEXT NOT NULL, seq BIGINT NOT NULL, "
    "head_kind TEXT NOT NULL, updated_at TEXT NOT NULL, updated_by TEXT NOT NULL, "
    "head_origin TEXT NOT NULL, head_scope TEXT NOT NULL, checksum TEXT NOT NULL, "
    "head_removed INTEGER NOT NULL, scope TEXT NOT NULL"
)
_CREATION = ("origin", "author", "created_at")  # read from the creating transaction, then from the row


def _creation(source: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(source[name] for name in _CREATION)


class Processed(NamedTuple):
    """What a batch did to a view: the heads of each entity it touched, and its row as now written
    (every column of the table), so that later views need not read it back."""

    heads: dict[str, HeadRow]
    rows: dict[str, dict[str, Any]]


class EntityView:
    """Subclasses say which entity, which table and how the primary head's payload maps to columns."""

    entity = ""
    table = ""
    key = ""
    columns: tuple[str, ...] = ()  # the payload columns, in the order payload_columns() gives them
    removed = "deleted"  # the payload's deletion flag; its column holds the entity's effective state

    def payload_columns(self, payload: dict[str, Any]) -> tuple[Any, ...]:
        """The primary head's payload as the values of ``columns`` (all but the deletion flag)."""
        raise NotImplementedError

    def payload_of(self, row: dict[str, Any]) -> dict[str, Any]:
        """The primary head's payload stored in ``columns`` (all but the deletion flag)."""
        raise NotImplementedError

    def _payload(self, row: dict[str, Any]) -> dict[str, Any]:
        return {**self.payload_of(row), self.removed: bool(row["head_removed"])}

    def process(self, cur: Cursor, events: Sequence[tuple[int, dict[str, Any]]]) -> Processed:
        """Advance the rows of the entities these events touch; return their heads and rows."""
        mine = [(seq, tx) for seq, tx in events if tx["entity"] == self.entity]
        if not mine:
            return Processed({}, {})
        rows = rows_by_key(cur, self.table, self.key, {tx["entity_gid"] for _, tx in mine})
        state: dict[str, Heads] = {gid: HeadRow.from_row(row, self._payload(row)).heads for gid, row in rows.items()}
        created = {gid: _creation(row) for gid, row in rows.items()}
        touched: dict[str, int] = {}
        for seq, tx in mine:
            key = tx["entity_gid"]
            heads = state.setdefault(key, {})
            if not heads:
                created[key] = _creation(tx)
            advance(heads, tx)
            touched[key] = seq
        changed = {key: HeadRow.of(state[key]) for key in touched}
        rows = self._write(cur, [(key, created[key], changed[key], seq) for key, seq in touched.items()])
        return Processed(changed, rows)

    def _write(self, cur: Cursor, changed: list[tuple[str, tuple[Any, ...], HeadRow, int]]
               ) -> dict[str, dict[str, Any]]:
        names = (self.key, *self.columns, self.removed, *_CREATION, *HeadRow.COLUMNS, "seq")
        rows = [(key, *self.payload_columns(heads.primary["payload"]), int(heads.effective[1]), *created,
                 *heads.to_row(), seq)
                for key, created, heads, seq in changed]
        updates = ", ".join(f"{n} = excluded.{n}" for n in names[1:])
        # one row per key (``changed`` comes from a dict), as one statement's DO UPDATE needs
        cur.insert_rows(self.table, names, rows, f"ON CONFLICT ({self.key}) DO UPDATE SET {updates}")
        return {row[0]: dict(zip(names, row, strict=True)) for row in rows}
