"""The open conflicts as one editor sees them: a visibility-checked list, review and resolve.

The list reads the conflicts view joined to the documents view, filtered by
the editor visibility rule in SQL (``infrastructure/visibility.py``), so an
item the editor may not see is absent, and a review or resolve of it is
``EntityNotFound`` like an item that does not exist. Conflicts of deleted
items are listed too: a deletion against an edit is a conflict to decide.
Reviews and resolutions go through the application (``review_conflict``,
``resolve_conflict``), which computes them from the item aggregate.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from api.errors import InvalidCursor
from api.library import Library, not_found
from domain import references
from domain.review import NoConflict, Review
from domain.visibility import Editor
from infrastructure.visibility import JOIN, item_filter, visible_documents
from projections.entity_view import loads

HEAD_FIELDS = ("gid", "kind", "author", "origin", "created_at", "checksum")


class ConflictDesk:
    def __init__(self, library: Library) -> None:
        self.library = library
        self.app = library.app
        self.db = library.db

    def conflicts(self, editor: Editor, *, cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the open conflicts on items the editor may see, oldest first, and the next cursor."""
        condition, params = item_filter(editor)
        where = [condition]
        if cursor:
            since, gid = _decode_cursor(cursor)
            where.append("(c.since > ? OR (c.since = ? AND c.item_gid > ?))")
            params.extend([since, since, gid])
        sql = (f"SELECT c.since AS since, d.* FROM conflicts c "
               f"JOIN documents d ON d.item_gid = c.item_gid {JOIN} WHERE {' AND '.join(where)} "
               "ORDER BY c.since, c.item_gid LIMIT ?")
        with self.db.read() as cur:
            rows = cur.execute(sql, [*params, limit + 1]).fetchall()
        page = [_summary(row) for row in rows[:limit]]
        more = len(rows) > limit
        return page, (_encode_cursor(page[-1]["since"], page[-1]["item"]) if more else None)

    def review(self, editor: Editor, gid: str) -> tuple[Review, dict[str, Any]]:
        """The review of an item's conflict, and its list entry (title, since)."""
        with self.db.read() as cur:
            row = self._visible(cur, editor, gid)
            flagged = cur.execute("SELECT since FROM conflicts WHERE item_gid = ?", (gid,)).fetchone()
        if flagged is None:
            raise NoConflict(f"item {gid} has no open conflict")
        return self.app.review_conflict(gid), {"title": row["title"], "since": flagged["since"]}

    def resolve(self, editor: Editor, gid: str, *, heads: list[str], document: dict[str, Any], scope: str | None,
                accept_markers: bool) -> dict[str, Any]:
        """Store the merge editor's resolution; returns the stored ``item.merged`` transaction."""
        with self.db.read() as cur:
            self._visible(cur, editor, gid)
        references.check(document["markdown"])
        self.library.teams.record(editor)
        receipt = self.app.resolve_conflict(gid, heads=heads, author=editor.author, document=document, scope=scope,
                                            accept_markers=accept_markers)
        return self.app.transaction(receipt.gid)

    @staticmethod
    def _visible(cur: Any, editor: Editor, gid: str) -> dict[str, Any]:
        row = visible_documents(cur, [gid], editor, include_deleted=True).get(gid)
        if row is None:
            raise not_found(gid)
        return row


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    primary = {"gid": row["head"], "kind": row["head_kind"], "author": row["updated_by"],
               "origin": row["head_origin"], "created_at": row["updated_at"], "checksum": row["checksum"]}
    heads = [primary, *({k: h[k] for k in HEAD_FIELDS} for h in loads(row["other_heads"]) or [])]
    heads.sort(key=lambda h: (h["created_at"], h["gid"]))
    return {"item": row["item_gid"], "title": row["title"], "deleted": bool(row["deleted"]), "since": row["since"],
            "heads": heads}


def _encode_cursor(since: str, gid: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([since, gid])).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        since, gid = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(since, str) and isinstance(gid, str):
            return since, gid
    except (binascii.Error, ValueError, TypeError):
        pass
    raise InvalidCursor(f"not a cursor of this list: {cursor[:60]!r}")
