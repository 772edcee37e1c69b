"""Backlinks: which items' current markdown refers to which items.

One row per (referring item, referenced item), taken from the referring
item's primary head (the state the documents view shows): every change of
an item replaces its rows, and a deleted item (any head deleted) refers to
nothing. Fed, like
conflicts, with the heads of the items a batch touched.
"""

from __future__ import annotations

from domain.reference_scanner import ATTACHMENT
from domain.references import targets
from projections.heads import HeadRow
from projections.store import Cursor, chunks, rows_by_key

DDL = [
    "CREATE TABLE IF NOT EXISTS item_references ("
    "item_gid TEXT NOT NULL, target_gid TEXT NOT NULL, PRIMARY KEY (item_gid, target_gid))",
    "CREATE INDEX IF NOT EXISTS item_references_by_target ON item_references (target_gid, item_gid)",
]
TABLES = ["item_references"]


def update(cur: Cursor, touched: dict[str, HeadRow]) -> None:
    if not touched:
        return
    referred = {item_gid: targets(heads.primary["payload"]["markdown"]) for item_gid, heads in touched.items()
                if not heads.effective[1]}
    attached = {key.removeprefix(ATTACHMENT) for keys in referred.values() for key in keys
                if key.startswith(ATTACHMENT)}
    items_of = {gid: row["item_gid"]
                for gid, row in rows_by_key(cur, "attachments", "attachment_gid", attached).items()}
    rows = []
    for item_gid, keys in referred.items():  # an attachment's reference is one to its item
        found = {items_of.get(key.removeprefix(ATTACHMENT)) if key.startswith(ATTACHMENT) else key for key in keys}
        rows.extend((item_gid, target) for target in sorted(found - {None, item_gid}))
    # A statement per batch, not per item: on PostgreSQL each is a round trip and ~40 us of client CPU in the
    # group commit's leader (docs/scaling.md)
    for chunk in chunks(touched):
        cur.execute(f"DELETE FROM item_references WHERE item_gid IN ({','.join('?' * len(chunk))})", chunk)
    cur.insert_rows("item_references", ("item_gid", "target_gid"), rows)


def referring(cur: Cursor, target_gid: str) -> list[str]:
    """Items whose current markdown refers to ``target_gid``."""
    rows = cur.execute(
        "SELECT item_gid FROM item_references WHERE target_gid = ? ORDER BY item_gid", (target_gid,)
    ).fetchall()
    return [row["item_gid"] for row in rows]
