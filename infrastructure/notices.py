"""What editors and webhooks are told about: notices derived from the transactions stored after a position.

Read from the views (the transaction index in outbox order, the documents, the shares), so a notice says
what the node holds now: a conflict resolved before anyone read the notice is not announced. Kinds:

- ``conflict.opened``: an item transaction arrived that is one of several heads (not a merge): the item
  needs a merge editor;
- ``item.edited``: another node changed an item (edited, merged, deleted, restored) that an editor of this
  node created;
- ``item.shared``: another node shared one of its items with this node (granted, or changed to another
  permission or team).

A listener (an editor's event stream, a webhook) keeps its own position (the last sequence number it was
given), so it can resume after it and miss nothing; ``since`` reads a bounded batch at a time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from infrastructure.persistence import Database
from projections.heads import loads
from projections.store import rows_by_key

KINDS = ("conflict.opened", "item.edited", "item.shared")
CHANGES = ("item.edited", "item.merged", "item.deleted", "item.restored")


@dataclass(frozen=True, slots=True)
class Notice:
    seq: int  # the transaction's place in this node's outbox: a listener's position
    kind: str
    item: str
    title: str
    transaction: str
    origin: str
    author: str  # who made the transaction
    created_at: str
    item_author: str  # who created the item
    heads: list[str]
    team: str | None = None  # item.shared: the team of this node it is shared with, if any
    permission: str | None = None  # item.shared

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def since(db: Database, node: str, position: int, limit: int = 200) -> tuple[list[Notice], int]:
    """The notices in the next ``limit`` transactions after ``position``, and the position after them."""
    with db.read() as cur:
        rows = cur.execute("SELECT seq, gid, entity, entity_gid, kind, origin, author, created_at FROM transactions "
                           "WHERE seq > ? ORDER BY seq LIMIT ?", (position, limit)).fetchall()
        if not rows:
            return [], position
        shares = rows_by_key(cur, "shares", "share_gid", {r["entity_gid"] for r in rows if r["entity"] == "share"})
        items = {r["entity_gid"] for r in rows if r["entity"] == "item"} | {s["item_gid"] for s in shares.values()}
        docs = rows_by_key(cur, "documents", "item_gid", items)
    notices = []
    for row in rows:
        for kind, doc, share in _kinds(row, node, docs, shares):
            notices.append(Notice(
                seq=int(row["seq"]), kind=kind, item=doc["item_gid"], title=doc["title"], transaction=row["gid"],
                origin=row["origin"], author=row["author"], created_at=row["created_at"],
                item_author=doc["author"], heads=loads(doc["heads"]),
                team=share["team"] if share else None, permission=share["permission"] if share else None))
    return notices, int(rows[-1]["seq"])


def _kinds(row: dict[str, Any], node: str, docs: dict[str, dict[str, Any]],
           shares: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any], dict[str, Any] | None]]:
    if row["entity"] == "share":
        share = shares.get(row["entity_gid"])
        doc = docs.get(share["item_gid"]) if share else None
        if (share and doc and row["kind"] in ("share.granted", "share.changed") and share["peer"] == node
                and not share["revoked"] and row["origin"] != node):
            return [("item.shared", doc, share)]
        return []
    doc = docs.get(row["entity_gid"])
    if row["entity"] != "item" or doc is None:
        return []
    found: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
    heads = loads(doc["heads"])
    if len(heads) > 1 and row["gid"] in heads and row["kind"] != "item.merged":
        found.append(("conflict.opened", doc, None))
    if row["kind"] in CHANGES and row["origin"] != node and doc["author"].endswith("@" + node):
        found.append(("item.edited", doc, None))
    return found
