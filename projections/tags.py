"""Current state per tag (concurrent renames resolved by the latest head)."""

from __future__ import annotations

from typing import Any

from projections.entity_view import HEAD_COLUMNS, HEAD_DDL, EntityView, head_columns, summary_from

DDL = [
    "CREATE TABLE IF NOT EXISTS tags ("
    f"tag_gid TEXT PRIMARY KEY, name TEXT NOT NULL, deleted INTEGER NOT NULL, {HEAD_DDL})",
]
TABLES = ["tags"]


class TagsView(EntityView):
    entity = "tag"
    table = "tags"
    key = "tag_gid"
    columns = ("name", "deleted", *HEAD_COLUMNS)

    def to_columns(self, primary: dict[str, Any]) -> dict[str, Any]:
        p = primary["payload"]
        return {"name": p["name"], "deleted": int(bool(p["deleted"])), **head_columns(primary)}

    def from_columns(self, row: dict[str, Any]) -> dict[str, Any]:
        return summary_from(row, {"name": row["name"], "deleted": bool(row["deleted"])})
