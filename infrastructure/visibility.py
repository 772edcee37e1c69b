"""Editor visibility in the store: editors' teams and the SQL form of the rule.

Transactions carry no team (the wire fields are fixed), so the node keeps
a local table ``editor_teams(author, team)``, written from the token of
every editor who changes something. It is node-local: never federated and
not a projection (a rebuild keeps it). ``item_filter`` is the rule of
``domain/visibility.py`` as a SQL condition over ``documents`` joined to
``editor_teams`` and ``shares``, so lists are filtered and paginated by the
database; the tests check that both forms agree. ``tag_filter`` is the same
rule for tags (over ``tags`` joined to ``editor_teams``): a tag follows its
own scope and author as an item does, and no share opens it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

from domain.errors import EntityNotFound
from domain.visibility import EVERY_EDITOR_SCOPES, Editor, editor_may_see
from infrastructure.persistence.database import Cursor, Database

DDL = ["CREATE TABLE IF NOT EXISTS editor_teams (author TEXT PRIMARY KEY, team TEXT)"]
_UNSET = object()
# documents d LEFT JOIN editor_teams t: the columns a visibility check needs
JOIN = "LEFT JOIN editor_teams t ON t.author = d.author"
ACCESS = ("item_gid", "scope", "author", "deleted")  # what the visibility check reads of a documents row
# tags g LEFT JOIN editor_teams t: the same for tags
TAG_JOIN = "LEFT JOIN editor_teams t ON t.author = g.author"


class EditorTeams:
    """The team of every editor who wrote on this node (as their last token said)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._known: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def create_tables(self) -> None:
        with self.db.transaction() as cur:
            for statement in DDL:
                cur.execute(statement)

    def record(self, editor: Editor) -> None:
        """Remember the editor's team (a write only when it changed)."""
        if self._known.get(editor.author, _UNSET) == editor.team:
            return
        with self._lock, self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO editor_teams (author, team) VALUES (?, ?) "
                "ON CONFLICT (author) DO UPDATE SET team = excluded.team",
                (editor.author, editor.team),
            )
            self._known[editor.author] = editor.team


# A live share of the item, made by its creator, naming this node (and the editor's team, or none).
_SHARED = ("EXISTS (SELECT 1 FROM shares s WHERE s.item_gid = d.item_gid AND s.peer = ? AND s.revoked = 0 "
           "AND s.origin = d.origin AND (s.team IS NULL OR s.team = ?))")


def node_of(editor: Editor) -> str:
    """The node an editor works on (their author id is name@<node>)."""
    return editor.author.split("@", 1)[1]


def _scope_condition(editor: Editor, alias: str) -> tuple[str, list[Any]]:
    """The rule without shares, over an entity view ``alias`` (author, scope) and ``editor_teams t``."""
    every = ", ".join("?" * len(EVERY_EDITOR_SCOPES))
    condition = (f"{alias}.author = ? OR {alias}.scope IN ({every}) "
                 f"OR ({alias}.scope = 'TEAM' AND t.team IS NOT NULL AND t.team = ?)")
    return condition, [editor.author, *EVERY_EDITOR_SCOPES, editor.team]


def item_filter(editor: Editor) -> tuple[str, list[Any]]:
    """SQL condition (over ``documents d`` and ``editor_teams t``) and its parameters."""
    if editor.is_admin:
        return "1 = 1", []
    condition, params = _scope_condition(editor, "d")
    return f"({condition} OR {_SHARED})", [*params, node_of(editor), editor.team]


def tag_filter(editor: Editor) -> tuple[str, list[Any]]:
    """SQL condition (over ``tags g`` and ``editor_teams t``) and its parameters."""
    if editor.is_admin:
        return "1 = 1", []
    condition, params = _scope_condition(editor, "g")
    return f"({condition})", params


def visible_documents(cur: Cursor, gids: Iterable[str], editor: Editor, *, include_deleted: bool = False,
                      columns: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """The documents rows (with ``team``) among ``gids`` that the editor may see: whole, or only ``columns``
    besides what the check reads (an item's row holds its whole text and its other heads')."""
    select = "d.*" if columns is None else ", ".join(f"d.{column}" for column in (*ACCESS, *columns))
    wanted = sorted(set(gids))
    found: dict[str, dict[str, Any]] = {}
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        marks = ",".join("?" * len(chunk))
        rows = [row for row in cur.execute(f"SELECT {select}, t.team AS team FROM documents d {JOIN} "
                                           f"WHERE d.item_gid IN ({marks})", chunk).fetchall()
                if include_deleted or not row["deleted"]]
        # A share only ever adds editors who may see an item: it is looked up for the rows the rest hides.
        hidden = [row["item_gid"] for row in rows if not may_see(row, editor)]
        teams: dict[str, list[str | None]] = {}
        if hidden:
            for share in cur.execute(
                    "SELECT s.item_gid, s.team FROM shares s JOIN documents d ON d.item_gid = s.item_gid WHERE "
                    "s.peer = ? AND s.revoked = 0 AND s.origin = d.origin "
                    f"AND s.item_gid IN ({','.join('?' * len(hidden))})", [node_of(editor), *hidden]).fetchall():
                teams.setdefault(share["item_gid"], []).append(share["team"])
        for row in rows:
            if may_see(row, editor, teams.get(row["item_gid"], ())):
                found[row["item_gid"]] = row
    return found


def visible_item(cur: Cursor, editor: Editor, gid: str, *, include_deleted: bool,
                 columns: Sequence[str] | None = None) -> dict[str, Any]:
    """The item's documents row (whole, or only ``columns`` besides what the check reads) if the editor may
    see it, else the same ``EntityNotFound`` as a missing item."""
    row = visible_documents(cur, [gid], editor, include_deleted=include_deleted, columns=columns).get(gid)
    if row is None:
        raise EntityNotFound(f"no item {gid} on this node")
    return row


def check_item(cur: Cursor, editor: Editor, gid: str, *, include_deleted: bool) -> None:
    """``EntityNotFound`` unless the editor may see the item; reads none of its text."""
    visible_item(cur, editor, gid, include_deleted=include_deleted, columns=())


def hidden_items(cur: Cursor, editor: Editor, gids: Iterable[str]) -> frozenset[str]:
    """The gids among ``gids`` that name no item the editor may see (deleted ones count as seen): what a
    field naming other items (``forked_from``) leaves out, as for an item that does not exist."""
    wanted = set(gids)
    return frozenset(wanted - set(visible_documents(cur, wanted, editor, include_deleted=True, columns=())))


def live_tags(cur: Cursor, gids: Iterable[str], editor: Editor | None = None) -> list[dict[str, Any]]:
    """The not deleted tags (``tag_gid``, ``name``) among ``gids`` that the editor may see (None: all)."""
    condition, params = tag_filter(editor) if editor is not None else ("1 = 1", [])
    wanted = sorted(set(gids))
    rows: list[dict[str, Any]] = []
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        rows.extend(cur.execute(f"SELECT g.tag_gid, g.name FROM tags g {TAG_JOIN} WHERE g.deleted = 0 "
                                f"AND {condition} AND g.tag_gid IN ({','.join('?' * len(chunk))})",
                                [*params, *chunk]).fetchall())
    return rows


def may_see(row: dict[str, Any], editor: Editor, shared_with_teams: Iterable[str | None] = ()) -> bool:
    """The domain rule applied to a documents row joined with its author's team (and the teams of
    this node that shares of the item name)."""
    return editor_may_see(row["scope"], row["author"], row.get("team"), editor, tuple(shared_with_teams))


def needs_no_share(editor: Editor, document: dict[str, Any]) -> bool:
    """Whether the editor's node edits the item (its ``documents`` row) without a share: its own, or open to all."""
    return document["origin"] == node_of(editor) or (
        document["scope"] not in ("OWNER", "TEAM") and not document["owner_edits_only"])


def edit_grant(cur: Cursor, editor: Editor, item_gid: str, document: dict[str, Any] | None = None) -> str | None:
    """The share transaction that lets this editor's node edit another node's OWNER or TEAM item (a live
    ``edit`` share by the item's owner, for the editor's team or every editor), to name in the edit. With the
    item's ``document`` row (``origin``, ``scope``, ``owner_edits_only`` read already), an item that needs no
    share (this node's own, or one every editor may edit) is answered without a query."""
    if document is not None and needs_no_share(editor, document):
        return None
    row = cur.execute(
        "SELECT s.head FROM shares s JOIN documents d ON d.item_gid = s.item_gid "
        "WHERE s.item_gid = ? AND s.peer = ? AND s.revoked = 0 AND s.permission = 'edit' AND s.origin = d.origin "
        "AND d.origin <> ? AND (d.scope IN ('OWNER', 'TEAM') OR d.owner_edits_only = 1) "
        "AND (s.team IS NULL OR s.team = ? OR ?) "
        "ORDER BY s.updated_at DESC, s.share_gid LIMIT 1",
        (item_gid, node_of(editor), node_of(editor), editor.team, editor.is_admin)).fetchone()
    return None if row is None else row["head"]
