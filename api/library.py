"""The node's library as one editor sees it: visibility-checked reads and writes.

Reads come from the projections (``db.read()`` cursors); writes go
through the application (``app``), which has projected them when it
returns, so a write is followed by a read of its result. Every item access
goes through the visibility rule (``domain/visibility.py``, in SQL form in
``infrastructure/visibility.py``): an item the editor may not see is
``EntityNotFound`` with the same message as an item that does not exist, so
its existence does not leak. Deleted items are not found either, unless a
read asks for them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from api import pagination, rendering
from api.library_edits import LibraryEdits
from api.library_tags import LibraryTags
from domain import references
from domain.application import NodeApplication
from domain.errors import EntityNotFound, Forbidden, UnknownNode
from domain.visibility import Editor
from infrastructure.persistence import Cursor, Database
from infrastructure.visibility import (
    JOIN,
    EditorTeams,
    check_item,
    edit_grant,
    hidden_items,
    item_filter,
    visible_documents,
    visible_item,
)
from projections import backlinks, lineage, transactions
from projections.documents import document
from projections.heads import loads

MAX_LINEAGE = 10_000
INDEX_DDL = [
    # The list's stable order (item creation, then gid) by index; on the documents
    # view's table, kept by rebuilds (they empty tables, they do not drop them).
    "CREATE INDEX IF NOT EXISTS documents_by_creation ON documents (created_at, item_gid)",
]


@dataclass(frozen=True)
class ItemQuery:
    tag: str | None = None
    scope: str | None = None
    text: str | None = None
    cursor: str | None = None
    limit: int = 50
    include_deleted: bool = False


class Library(LibraryEdits, LibraryTags):
    def __init__(self, app: NodeApplication, db: Database, *, knows: Callable[[str], bool]) -> None:
        self.app = app
        self.db = db
        self.knows = knows  # is this a node name the node knows (itself, a peer, keys)?
        self.teams = EditorTeams(db)

    def create_tables(self) -> None:
        self.teams.create_tables()
        with self.db.transaction() as cur:
            for statement in INDEX_DDL:
                cur.execute(statement)

    # --- item reads ----------------------------------------------------------------
    def item(self, editor: Editor, gid: str, *, include_deleted: bool = False) -> dict[str, Any]:
        """The item's current state (documents row, JSON decoded), with known tags and visible sources."""
        with self.db.read() as cur:
            doc = document(visible_item(cur, editor, gid, include_deleted=include_deleted))
            return self._named(cur, editor, doc)

    def _named(self, cur: Cursor, editor: Editor, doc: dict[str, Any]) -> dict[str, Any]:
        """The document with its tags named and the sources the editor may not see left out."""
        self.name_tags(cur, editor, [doc])
        hidden = hidden_items(cur, editor, doc["forked_from"])
        doc["forked_from"] = [g for g in doc["forked_from"] if g not in hidden]
        return doc

    def items(self, editor: Editor, query: ItemQuery) -> tuple[list[dict[str, Any]], str | None]:
        """One page of the items the editor may see, in creation order, and the next cursor."""
        condition, params = item_filter(editor)
        where = [condition]
        if not query.include_deleted:
            where.append("d.deleted = 0")
        if query.scope:
            where.append("d.scope = ?")
            params.append(query.scope)
        if query.tag:
            where.append("d.tags LIKE ?")
            params.append(f'%"{query.tag}"%')  # a canonical gid: no LIKE wildcards in it
        if query.text:
            where.append("LOWER(d.title) LIKE ? ESCAPE '!'")
            escaped = query.text.lower().replace("!", "!!").replace("%", "!%").replace("_", "!_")
            params.append(f"%{escaped}%")
        if query.cursor:
            seek, after = pagination.after(query.cursor, "d.created_at", "d.item_gid")
            where.append(seek)
            params.extend(after)
        sql = (f"SELECT d.*, t.team AS team FROM documents d {JOIN} WHERE {' AND '.join(where)} "
               "ORDER BY d.created_at, d.item_gid LIMIT ?")
        with self.db.read() as cur:
            rows, next_cursor = pagination.split(cur.execute(sql, [*params, query.limit + 1]).fetchall(),
                                                 query.limit, "created_at", "item_gid")
            docs = [document(row) for row in rows]
            self.name_tags(cur, editor, docs)
        return docs, next_cursor

    def history(self, editor: Editor, gid: str, *, include_deleted: bool = False) -> dict[str, Any]:
        with self.db.read() as cur:
            row = visible_item(cur, editor, gid, include_deleted=include_deleted, columns=("heads",))
            nodes = transactions.history(cur, gid)
        return {"item": gid, "heads": loads(row["heads"]), "nodes": nodes}

    def version(self, editor: Editor, gid: str, tx_gid: str) -> dict[str, Any]:
        """One stored transaction of the item, as signed but for the sources (``forked_from``) the
        editor may not see, which are left out as in every other view."""
        with self.db.read() as cur:
            check_item(cur, editor, gid, include_deleted=True)
        tx = self.app.transaction(tx_gid)
        if tx["entity"] != "item" or tx["entity_gid"] != gid:
            raise EntityNotFound(f"no transaction {tx_gid} of item {gid}")
        with self.db.read() as cur:
            hidden = hidden_items(cur, editor, tx["payload"]["forked_from"])
        if not hidden:
            return tx
        forked_from = [g for g in tx["payload"]["forked_from"] if g not in hidden]
        return {**tx, "payload": {**tx["payload"], "forked_from": forked_from}}

    def render(self, editor: Editor, gid: str, *, include_deleted: bool = False,
               links: rendering.Links = rendering.API_LINKS) -> dict[str, Any]:
        """The item's markdown as HTML, each reference a link (``links``) when the editor may see its target."""
        with self.db.read() as cur:
            row = visible_item(cur, editor, gid, include_deleted=include_deleted)
            rendered = rendering.render(cur, editor, row["markdown"], links)
        return {"item": gid, "head": row["head"], "title": row["title"], "html": rendered.html,
                "references": rendered.references}

    def preview(self, editor: Editor, markdown: str, *,
                links: rendering.Links = rendering.API_LINKS) -> references.Rendered:
        """Any markdown (a draft, an old version) rendered as ``render`` renders an item's current text."""
        with self.db.read() as cur:
            return rendering.render(cur, editor, markdown, links)

    def backlinks(self, editor: Editor, gid: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        with self.db.read() as cur:
            check_item(cur, editor, gid, include_deleted=include_deleted)
            referring = visible_documents(cur, backlinks.referring(cur, gid), editor)
            docs = sorted((document(r) for r in referring.values()), key=lambda d: (d["created_at"], d["item_gid"]))
            self.name_tags(cur, editor, docs)
        return docs

    def lineage(self, editor: Editor, gid: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Items forked from this one, transitively, through items the editor may see."""
        found: list[dict[str, Any]] = []
        with self.db.read() as cur:
            check_item(cur, editor, gid, include_deleted=include_deleted)
            seen, frontier, depth = {gid}, [gid], 0
            while frontier and len(seen) < MAX_LINEAGE:
                depth += 1
                edges = lineage.forks_of(cur, frontier)
                children = sorted({fork for fork, _ in edges} - seen)
                visible = visible_documents(cur, children, editor, include_deleted=True,
                                             columns=("title", "forked_from"))
                seen.update(visible)
                frontier = [child for child in children if child in visible]
                for child in frontier:
                    row = visible[child]
                    if include_deleted or not row["deleted"]:
                        sources = sorted(s for s in loads(row["forked_from"]) if s in seen)
                        found.append({"gid": child, "title": row["title"], "forked_from": sources, "depth": depth})
        return found

    # --- item writes ---------------------------------------------------------------
    def create_item(self, editor: Editor, *, title: str, markdown: str, tags: list[str], scope: str,
                    owner_edits_only: bool = False) -> str:
        references.check(markdown)
        self.teams.record(editor)
        receipt = self.app.create_item(author=editor.author, title=title, markdown=markdown, tags=tags, scope=scope,
                                       owner_edits_only=owner_edits_only)
        return receipt.entity_gid

    def delete_item(self, editor: Editor, gid: str, *, parent: str) -> str:
        self._check_writable(editor, gid)
        self.teams.record(editor)
        self.app.delete_item(gid, parent=parent, author=editor.author)
        return gid

    def restore_item(self, editor: Editor, gid: str, *, parent: str) -> str:
        self._check_writable(editor, gid)
        self.teams.record(editor)
        self.app.restore_item(gid, parent=parent, author=editor.author)
        return gid

    def fork_item(self, editor: Editor, sources: list[str], *, title: str | None, markdown: str | None,
                  tags: list[str] | None, scope: str | None) -> str:
        with self.db.read() as cur:
            for source in sources:
                check_item(cur, editor, source, include_deleted=False)
        if markdown is not None:
            references.check(markdown)
        self.teams.record(editor)
        receipt = self.app.fork_item(sources, author=editor.author, title=title, markdown=markdown, tags=tags,
                                     scope=scope)
        return receipt.entity_gid

    # --- shares --------------------------------------------------------------------
    def shares(self, editor: Editor, gid: str, *, include_revoked: bool = False) -> list[dict[str, Any]]:
        with self.db.read() as cur:
            check_item(cur, editor, gid, include_deleted=False)
            sql = "SELECT * FROM shares WHERE item_gid = ?" + ("" if include_revoked else " AND revoked = 0")
            return cur.execute(sql + " ORDER BY created_at, share_gid", (gid,)).fetchall()

    def grant_share(self, editor: Editor, gid: str, *, peer: str, permission: str,
                    team: str | None = None, allow_unknown: bool = False) -> dict[str, Any]:
        self._check_writable(editor, gid, include_deleted=False)
        if not allow_unknown and not self.knows(peer):
            raise UnknownNode(f"{peer} is not a node this node knows (not this node, not a peer, no keys of it): "
                              "check the name, or send allow_unknown: true to share with it all the same")
        self.teams.record(editor)
        receipt = self.app.grant_share(author=editor.author, item_gid=gid, peer=peer, permission=permission, team=team)
        return self._share(gid, receipt.entity_gid)

    def request_share(self, editor: Editor, gid: str, *, peer: str, permission: str) -> dict[str, Any]:
        """Ask the item's owner to share it with ``peer`` (this node must hold an edit share of it)."""
        with self.db.read() as cur:
            check_item(cur, editor, gid, include_deleted=False)
            grant = edit_grant(cur, editor, gid)
        if grant is None:
            raise Forbidden(f"asking the owner to share item {gid} needs an edit share of it for this node")
        self.teams.record(editor)
        receipt = self.app.request_share(author=editor.author, item_gid=gid, peer=peer, permission=permission,
                                         grant=grant)
        return self._share(gid, receipt.entity_gid)

    def change_share(self, editor: Editor, gid: str, share_gid: str, *, permission: str,
                     team: str | None) -> dict[str, Any]:
        self._check_writable(editor, gid, include_deleted=False)
        self._share(gid, share_gid)
        self.teams.record(editor)
        self.app.change_share(share_gid, author=editor.author, permission=permission, team=team)
        return self._share(gid, share_gid)

    def revoke_share(self, editor: Editor, gid: str, share_gid: str) -> dict[str, Any]:
        self._check_writable(editor, gid, include_deleted=False)
        share = self._share(gid, share_gid)
        if share["revoked"]:
            return share  # revoking twice changes nothing
        self.teams.record(editor)
        self.app.revoke_share(share_gid, author=editor.author)
        return self._share(gid, share_gid)

    def _share(self, gid: str, share_gid: str) -> dict[str, Any]:
        with self.db.read() as cur:
            row = cur.execute("SELECT * FROM shares WHERE share_gid = ? AND item_gid = ?", (share_gid, gid)).fetchone()
        if row is None:
            raise EntityNotFound(f"no share {share_gid} of item {gid}")
        return row

    # --- plumbing ------------------------------------------------------------------
    def _check_writable(self, editor: Editor, gid: str, *, include_deleted: bool = True) -> None:
        # Edits find deleted items, so that a change to one gets the domain's clear refusal (409).
        with self.db.read() as cur:
            check_item(cur, editor, gid, include_deleted=include_deleted)
