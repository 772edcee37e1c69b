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

from typing import Any

from api import pagination
from api.library import Library, visible_item
from domain import references
from domain.review import NoConflict, Review
from domain.visibility import Editor
from infrastructure.visibility import JOIN, edit_grant, item_filter


class ConflictDesk:
    def __init__(self, library: Library) -> None:
        self.library = library
        self.app = library.app
        self.db = library.db

    def conflicts(self, editor: Editor, *, cursor: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the open conflicts on items the editor may see, oldest first, and the next cursor.

        Each row is the item's documents row with the conflict's ``since``.
        """
        condition, params = item_filter(editor)
        where = [condition]
        if cursor:
            seek, after = pagination.after(cursor, "c.since", "c.item_gid")
            where.append(seek)
            params.extend(after)
        sql = (f"SELECT c.since AS since, d.* FROM conflicts c "
               f"JOIN documents d ON d.item_gid = c.item_gid {JOIN} WHERE {' AND '.join(where)} "
               "ORDER BY c.since, c.item_gid LIMIT ?")
        with self.db.read() as cur:
            rows = cur.execute(sql, [*params, limit + 1]).fetchall()
        return pagination.split(rows, limit, "since", "item_gid")

    def review(self, editor: Editor, gid: str) -> tuple[Review, dict[str, Any]]:
        """The review of an item's conflict, and its list entry (title, since)."""
        with self.db.read() as cur:
            row = visible_item(cur, editor, gid, include_deleted=True)
            flagged = cur.execute("SELECT since FROM conflicts WHERE item_gid = ?", (gid,)).fetchone()
        if flagged is None:
            raise NoConflict(f"item {gid} has no open conflict")
        return self.app.review_conflict(gid), {"title": row["title"], "since": flagged["since"]}

    def resolve(self, editor: Editor, gid: str, *, heads: list[str], document: dict[str, Any], scope: str | None,
                accept_markers: bool) -> dict[str, Any]:
        """Store the merge editor's resolution; returns the stored ``item.merged`` transaction."""
        with self.db.read() as cur:
            visible_item(cur, editor, gid, include_deleted=True)
            grant = edit_grant(cur, editor, gid)
        references.check(document["markdown"])
        self.library.teams.record(editor)
        receipt = self.app.resolve_conflict(gid, heads=heads, author=editor.author, document=document, scope=scope,
                                            accept_markers=accept_markers, grant=grant)
        return self.app.transaction(receipt.gid)
