"""Current state per tag (concurrent renames resolved by the latest head)."""

from __future__ import annotations

from typing import Any

from projections.entity_view import ENTITY_DDL, EntityView

DDL = [
    "CREATE TABLE IF NOT EXISTS tags ("
    f"tag_gid TEXT PRIMARY KEY, name TEXT NOT NULL, deleted INTEGER NOT NULL, {ENTITY_DDL})",
]
TABLES = ["tags"]


class TagsView(EntityView):
    entity = "tag"
    table = "tags"
    key = "tag_gid"
    columns = ("name",)

    def payload_columns(self, payload: dict[str, Any]) -> tuple[Any, ...]:
        return (payload["name"],)

    def payload_of(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"name": row["name"]}
