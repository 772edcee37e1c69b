"""Editor visibility in the store: editors' teams and the SQL form of the rule.

Transactions carry no team (the wire fields are fixed), so the node keeps
a local table ``editor_teams(author, team)``, written from the token of
every editor who changes something. It is node-local: never federated and
not a projection (a rebuild keeps it). ``item_filter`` is the rule of
``domain/visibility.py`` as a SQL condition over ``documents`` joined to
``editor_teams``, so lists are filtered and paginated by the database; the
tests check that both forms agree.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from domain.visibility import EVERY_EDITOR_SCOPES, Editor, editor_may_see

DDL = ["CREATE TABLE IF NOT EXISTS editor_teams (author TEXT PRIMARY KEY, team TEXT)"]
_UNSET = object()
# documents d LEFT JOIN editor_teams t: the columns a visibility check needs
JOIN = "LEFT JOIN editor_teams t ON t.author = d.author"


class EditorTeams:
    """The team of every editor who wrote on this node (as their last token said)."""

    def __init__(self, db: Any) -> None:
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


def item_filter(editor: Editor) -> tuple[str, list[Any]]:
    """SQL condition (over ``documents d`` and ``editor_teams t``) and its parameters."""
    if editor.is_admin:
        return "1 = 1", []
    every = ", ".join("?" * len(EVERY_EDITOR_SCOPES))
    condition = (f"(d.author = ? OR d.scope IN ({every}) "
                 "OR (d.scope = 'TEAM' AND t.team IS NOT NULL AND t.team = ?))")
    return condition, [editor.author, *EVERY_EDITOR_SCOPES, editor.team]


def visible_documents(cur: Any, gids: Iterable[str], editor: Editor, *,
                      include_deleted: bool = False) -> dict[str, dict[str, Any]]:
    """The documents rows (with ``team``) among ``gids`` that the editor may see."""
    wanted = sorted(set(gids))
    found: dict[str, dict[str, Any]] = {}
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        rows = cur.execute(
            f"SELECT d.*, t.team AS team FROM documents d {JOIN} "
            f"WHERE d.item_gid IN ({','.join('?' * len(chunk))})",
            chunk,
        ).fetchall()
        for row in rows:
            if (include_deleted or not row["deleted"]) and may_see(row, editor):
                found[row["item_gid"]] = row
    return found


def may_see(row: dict[str, Any], editor: Editor) -> bool:
    """The domain rule applied to a documents row joined with its author's team."""
    return editor_may_see(row["scope"], row["author"], row.get("team"), editor)
