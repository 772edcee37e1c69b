"""Current state per attachment: which item, its name, media type, size and the SHA-256 of its bytes."""

from __future__ import annotations

from typing import Any

from projections.entity_view import ENTITY_DDL, EntityView

DDL = [
    "CREATE TABLE IF NOT EXISTS attachments ("
    "attachment_gid TEXT PRIMARY KEY, item_gid TEXT NOT NULL, name TEXT NOT NULL, media_type TEXT NOT NULL, "
    f"size BIGINT NOT NULL, sha256 TEXT NOT NULL, deleted INTEGER NOT NULL, {ENTITY_DDL})",
    "CREATE INDEX IF NOT EXISTS attachments_by_item ON attachments (item_gid)",
    "CREATE INDEX IF NOT EXISTS attachments_by_sha256 ON attachments (sha256)",
]
TABLES = ["attachments"]


class AttachmentsView(EntityView):
    entity = "attachment"
    table = "attachments"
    key = "attachment_gid"
    columns = ("item_gid", "name", "media_type", "size", "sha256")

    def payload_columns(self, payload: dict[str, Any]) -> tuple[Any, ...]:
        return (payload["item"], payload["name"], payload["media_type"], payload["size"], payload["sha256"])

    def payload_of(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"item": row["item_gid"], "name": row["name"], "media_type": row["media_type"],
                "size": int(row["size"]), "sha256": row["sha256"]}
