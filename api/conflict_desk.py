"""The open conflicts as one editor sees them: a visibility-checked list, review and resolve.

The list reads the conflicts view joined to the documents view, filtered by
the editor visibility rule in SQL (``infrastructure/visibility.py``), so an
item the editor may not see is absent, and a review or resolve of it is
``EntityNotFound`` like an item that does not exist. Conflicts of deleted
items are listed too: a deletion against an edit is a conflict to decide.
Items the editor may not see are left out of every ``forked_from`` the
review shows, and a resolution keeps those of them that the heads name: the
editor could not name them.
Reviews and resolutions go through the application (``review_conflict``,
``resolve_conflict``), which computes them from the item aggregate.
"""

from __future__ import annotations

from typing import Any

from api import pagination
from api.library import Library
from domain import references
from domain.review import NoConflict, Review
from domain.visibility import Editor
from infrastructure.visibility import JOIN, edit_grant, hidden_items, item_filter, visible_item
from projections.heads import loads


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
        """The review of an item's conflict, and its list entry (title, since, the ``hidden`` sources)."""
        with self.db.read() as cur:
            row = visible_item(cur, editor, gid, include_deleted=True)
            flagged = cur.execute("SELECT since FROM conflicts WHERE item_gid = ?", (gid,)).fetchone()
        if flagged is None:
            raise NoConflict(f"item {gid} has no open conflict")
        review = self.app.review_conflict(gid)
        versions = [*review.heads, *([review.base] if review.base else [])]
        with self.db.read() as cur:
            hidden = hidden_items(cur, editor, {g for v in versions for g in v.payload["forked_from"]})
        return review, {"title": row["title"], "since": flagged["since"], "hidden": hidden}

    def resolve(self, editor: Editor, gid: str, *, heads: list[str], document: dict[str, Any], scope: str | None,
                accept_markers: bool) -> tuple[dict[str, Any], frozenset[str]]:
        """Store the merge editor's resolution; returns the stored ``item.merged`` transaction and the
        sources in it the editor may not see."""
        with self.db.read() as cur:
            row = visible_item(cur, editor, gid, include_deleted=True)
            grant = edit_grant(cur, editor, gid)
            current = self.app.transactions(loads(row["heads"])).values()
            hidden = hidden_items(cur, editor, {g for tx in current for g in tx["payload"]["forked_from"]})
        document = {**document, "forked_from": sorted({*document["forked_from"], *hidden})}
        references.check(document["markdown"])
        self.library.teams.record(editor)
        receipt = self.app.resolve_conflict(gid, heads=heads, author=editor.author, document=document, scope=scope,
                                            accept_markers=accept_markers, grant=grant)
        tx = self.app.transaction(receipt.gid)
        with self.db.read() as cur:
            return tx, hidden_items(cur, editor, tx["payload"]["forked_from"])
