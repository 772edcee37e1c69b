"""Who may see an item on this node: the rule for the node's own editors.

The rules (seeing and editing go together for editors):

- ``DOMAIN``, ``NETWORK`` and ``PUBLIC`` items: every editor of the node;
- ``TEAM`` items: their author, and the editors whose team is the author's
  team; when the author's team is unknown, the author only (fail closed);
- ``OWNER`` items: their author only;
- any item another node shared with this node: the editors of the team the
  share names (every editor when it names none);
- admins see every item.

The item's author is its creator (the author of its first transaction), and
its scope is its current scope. What peers may see is decided in
``domain/federation.py``; the SQL form of this rule, used to filter lists,
is ``infrastructure/visibility.py``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

ROLES = ("editor", "admin", "merge")
EVERY_EDITOR_SCOPES = ("DOMAIN", "NETWORK", "PUBLIC")


@dataclass(frozen=True, slots=True)
class Editor:
    """Someone working on this node through the API, as named by their token."""

    name: str  # the token's subject
    author: str  # name@<node>: the author of the transactions they make
    role: str = "editor"  # editor | admin | merge
    team: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def editor_may_see(scope: str, item_author: str, item_team: str | None, editor: Editor,
                   shared_with_teams: Collection[str | None] = ()) -> bool:
    """May this editor see an item of this scope, author and author's team, shared with this node for
    these teams (None: every editor)? (Editing another node's item also needs an edit share or an
    open scope: ``domain/authority.py``.)"""
    if editor.is_admin or item_author == editor.author:
        return True
    if any(team is None or team == editor.team for team in shared_with_teams):
        return True
    if scope in EVERY_EDITOR_SCOPES:
        return True
    if scope == "TEAM":
        return item_team is not None and item_team == editor.team
    return False  # OWNER, or a scope this rule does not know
