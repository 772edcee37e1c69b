"""Current state per share: which peer (and which team there) may read or edit which item."""

from __future__ import annotations

from typing import Any

from projections.entity_view import ENTITY_DDL, EntityView

DDL = [
    "CREATE TABLE IF NOT EXISTS shares ("
    "share_gid TEXT PRIMARY KEY, item_gid TEXT NOT NULL, peer TEXT NOT NULL, "
    f"permission TEXT NOT NULL, team TEXT, revoked INTEGER NOT NULL, {ENTITY_DDL})",
    "CREATE INDEX IF NOT EXISTS shares_by_item ON shares (item_gid)",
    "CREATE INDEX IF NOT EXISTS shares_by_peer ON shares (peer)",
]
TABLES = ["shares"]


class SharesView(EntityView):
    entity = "share"
    table = "shares"
    key = "share_gid"
    columns = ("item_gid", "peer", "permission", "team")
    removed = "revoked"

    def payload_columns(self, payload: dict[str, Any]) -> tuple[Any, ...]:
        return (payload["item"], payload["peer"], payload["permission"], payload.get("team"))

    def payload_of(self, row: dict[str, Any]) -> dict[str, Any]:
        payload = {"item": row["item_gid"], "peer": row["peer"], "permission": row["permission"]}
        return payload if row["team"] is None else {**payload, "team": row["team"]}
