"""Current document state per item (the primary head's state, all heads)."""

from __future__ import annotations

from typing import Any

from projections.entity_view import ENTITY_DDL, EntityView
from projections.heads import dumps, loads
from projections.store import Cursor

DDL = [
    "CREATE TABLE IF NOT EXISTS documents ("
    "item_gid TEXT PRIMARY KEY, title TEXT NOT NULL, markdown TEXT NOT NULL, "
    "tags TEXT NOT NULL, forked_from TEXT NOT NULL, owner_edits_only INTEGER NOT NULL, deleted INTEGER NOT NULL, "
    f"{ENTITY_DDL})",
    "CREATE INDEX IF NOT EXISTS documents_by_update ON documents (updated_at, item_gid)",
]
TABLES = ["documents"]


class DocumentsView(EntityView):
    entity = "item"
    table = "documents"
    key = "item_gid"
    columns = ("title", "markdown", "tags", "forked_from", "owner_edits_only")

    def payload_columns(self, payload: dict[str, Any]) -> tuple[Any, ...]:
        return (payload["title"], payload["markdown"], dumps(payload["tags"]), dumps(payload["forked_from"]),
                int(bool(payload.get("owner_edits_only"))))

    def payload_of(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "title": row["title"],
            "markdown": row["markdown"],
            "tags": loads(row["tags"]),
            "forked_from": loads(row["forked_from"]),
            **({"owner_edits_only": True} if row["owner_edits_only"] else {}),
        }


def document(row: dict[str, Any]) -> dict[str, Any]:
    """A documents row as plain data (JSON columns decoded)."""
    out = dict(row)
    for name in ("tags", "forked_from", "heads", "other_heads"):
        out[name] = loads(row[name])
    out["deleted"] = bool(row["deleted"])
    return out


def get(cur: Cursor, item_gid: str) -> dict[str, Any] | None:
    row = cur.execute("SELECT * FROM documents WHERE item_gid = ?", (item_gid,)).fetchone()
    return None if row is None else document(row)
