"""Current state per share: which peer may read or edit which item."""

from __future__ import annotations

from typing import Any

from projections.entity_view import HEAD_COLUMNS, HEAD_DDL, EntityView, head_columns, summary_from

DDL = [
    "CREATE TABLE IF NOT EXISTS shares ("
    "share_gid TEXT PRIMARY KEY, item_gid TEXT NOT NULL, peer TEXT NOT NULL, "
    f"permission TEXT NOT NULL, revoked INTEGER NOT NULL, {HEAD_DDL})",
    "CREATE INDEX IF NOT EXISTS shares_by_item ON shares (item_gid)",
    "CREATE INDEX IF NOT EXISTS shares_by_peer ON shares (peer)",
]
TABLES = ["shares"]


class SharesView(EntityView):
    entity = "share"
    table = "shares"
    key = "share_gid"
    columns = ("item_gid", "peer", "permission", "revoked", *HEAD_COLUMNS)

    def to_columns(self, primary: dict[str, Any]) -> dict[str, Any]:
        p = primary["payload"]
        return {
            "item_gid": p["item"],
            "peer": p["peer"],
            "permission": p["permission"],
            "revoked": int(bool(p["revoked"])),
            **head_columns(primary),
        }

    def from_columns(self, row: dict[str, Any]) -> dict[str, Any]:
        payload = {"item": row["item_gid"], "peer": row["peer"], "permission": row["permission"],
                   "revoked": bool(row["revoked"])}
        return summary_from(row, payload)
