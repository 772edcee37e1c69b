"""The tags part of the editor's library (``api.library.Library``): tag reads and writes, and the naming of an
item's tags.

A tag follows the item rule on its own scope and author (``tag_filter``): one the editor may not see is left out
of lists and item views, and is ``EntityNotFound`` like an unknown tag.
"""

from __future__ import annotations

from typing import Any

from domain.application import NodeApplication
from domain.errors import EntityNotFound
from domain.visibility import Editor
from infrastructure.persistence import Cursor, Database
from infrastructure.visibility import TAG_JOIN, EditorTeams, live_tags, tag_filter
from projections.heads import loads


class LibraryTags:
    """Tag methods of ``Library`` (which provides these attributes)."""

    app: NodeApplication
    db: Database
    teams: EditorTeams

    def tags(self, editor: Editor) -> list[dict[str, Any]]:
        condition, params = tag_filter(editor)
        with self.db.read() as cur:
            return cur.execute(f"SELECT g.* FROM tags g {TAG_JOIN} WHERE g.deleted = 0 AND {condition} "
                               "ORDER BY g.name, g.tag_gid", params).fetchall()

    def tag(self, editor: Editor, tag_gid: str) -> dict[str, Any]:
        condition, params = tag_filter(editor)
        with self.db.read() as cur:
            row = cur.execute(f"SELECT g.* FROM tags g {TAG_JOIN} WHERE g.tag_gid = ? AND g.deleted = 0 "
                              f"AND {condition}", [tag_gid, *params]).fetchone()
        if row is None:
            raise EntityNotFound(f"no tag {tag_gid} on this node")
        return row

    def create_tag(self, editor: Editor, *, name: str, scope: str) -> str:
        self.teams.record(editor)
        return self.app.create_tag(author=editor.author, name=name, scope=scope).entity_gid

    def rename_tag(self, editor: Editor, tag_gid: str, *, name: str, parent: str | None) -> str:
        current = self.tag(editor, tag_gid)
        self.teams.record(editor)
        self.app.rename_tag(tag_gid, parent=parent or current["head"], author=editor.author, name=name)
        return tag_gid

    def delete_tag(self, editor: Editor, tag_gid: str, *, parent: str | None) -> None:
        current = self.tag(editor, tag_gid)
        self.teams.record(editor)
        self.app.delete_tag(tag_gid, parent=parent or current["head"], author=editor.author)

    @staticmethod
    def name_tags(cur: Cursor, editor: Editor, docs: list[dict[str, Any]]) -> None:
        """Set each document's ``tag_refs``: its known (not deleted) tags the editor may see, by name."""
        known = live_tags(cur, {tag for doc in docs for tag in doc["tags"]}, editor)
        refs = sorted(({"gid": r["tag_gid"], "name": r["name"]} for r in known), key=lambda r: (r["name"], r["gid"]))
        for doc in docs:
            doc["tag_refs"] = [ref for ref in refs if ref["gid"] in doc["tags"]]

    @staticmethod
    def _hidden_tags(cur: Cursor, editor: Editor, gid: str) -> list[str]:
        """The item's live tags the editor may not see: an edit of its tags keeps them (it could not name them)."""
        row = cur.execute("SELECT tags FROM documents WHERE item_gid = ?", (gid,)).fetchone()
        current = set(loads(row["tags"])) if row else set()
        shown = {r["tag_gid"] for r in live_tags(cur, current, editor)}
        return sorted(r["tag_gid"] for r in live_tags(cur, current) if r["tag_gid"] not in shown)

