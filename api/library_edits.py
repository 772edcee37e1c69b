"""The edits part of the editor's library (``api.library.Library``): an item's edit, from a thread or from the
event loop, and its answer.

The editor's checks of an edit (may they see the item, which share lets this node edit it, which of its tags
they cannot see and so keep) are one read. On SQLite the group commit's leader makes it, just before it builds
the edit (``terms``): made in each editor's thread, the reads of 16 editors and the leader's statements contended
for the interpreter lock (a SQLite call took ~80 us of CPU instead of 5), 20 % of the edits per second. On
PostgreSQL a read is a round trip, better overlapped in the editors' threads, so it is made there first.

On SQLite the ordinary edit (``api.fast_paths``) is not given a thread at all: the event loop submits it to the
group commit (``edit_item_in_loop``) and awaits it, since every statement of it is the leader's. A thread per
edit cost two more thread hand-offs each (loop to worker, worker to leader and back): 18 % of the edits per
second with 16 editors (bench/api.py).

The answer is the row the edit's own commit projected (``Receipt.view``), not a read of the item afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from domain import references
from domain.application import NodeApplication
from domain.commands import Change, EditTerms, Receipt
from domain.item import Item
from domain.visibility import Editor
from infrastructure import visibility
from infrastructure.persistence import Database
from infrastructure.visibility import EditorTeams, edit_grant
from projections.documents import document


class LibraryEdits:
    """Edit methods of ``Library``, which provides these attributes and the reads they use (``item``,
    ``_named``, ``_hidden_tags``, ``_check_writable``: not declared here, where they would hide its own)."""

    app: NodeApplication
    db: Database
    teams: EditorTeams

    def edit_item(self, editor: Editor, gid: str, *, parent: str, title: str | None, markdown: str | None,
                  tags: list[str] | None, scope: str | None, owner_edits_only: bool | None = None) -> dict[str, Any]:
        """Edit the item; the item after the edit, as ``item`` reads it. Its checks are read by the group
        commit's leader on SQLite, first in this thread on PostgreSQL (see the module)."""
        checked: dict[str, Any] = {}
        change = self._edit_change(editor, gid, tags, checked, ahead=not self.db.in_process, parent=parent,
                              title=title, markdown=markdown, scope=scope, owner_edits_only=owner_edits_only)
        receipt = self.app.run(gid, Item, change)
        return self._after(editor, gid, checked["before"], receipt)

    async def edit_item_in_loop(self, editor: Editor, gid: str, *, parent: str, title: str | None,
                                markdown: str | None, tags: list[str] | None, scope: str | None,
                                owner_edits_only: bool | None = None) -> dict[str, Any]:
        """``edit_item`` from the event loop, SQLite only (its statements are the leader's, in ``terms``)."""
        checked: dict[str, Any] = {}
        change = self._edit_change(editor, gid, tags, checked, ahead=False, parent=parent, title=title,
                              markdown=markdown, scope=scope, owner_edits_only=owner_edits_only)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Receipt] = loop.create_future()

        def finished(command: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_settle, future, command)

        self.app.submit(gid, Item, change, finished)
        receipt = await future
        return self._after(editor, gid, checked["before"], receipt)

    def _edit_change(self, editor: Editor, gid: str, tags: list[str] | None, checked: dict[str, Any], *, ahead: bool,
                parent: str, markdown: str | None, **edit: Any) -> Change[Item]:
        """The edit's change, its markdown's references checked; its checks are read where it is built (the
        document they read into ``checked["before"]``), or now if ``ahead``."""
        if markdown is not None:
            self._check_references(editor, gid, markdown)
        terms = self._terms(editor, gid, tags, checked)
        if ahead:
            decided = terms()
            terms = lambda: decided  # noqa: E731
        return self.app.item_edit(parent=parent, author=editor.author, markdown=markdown, terms=terms, **edit)

    def _terms(self, editor: Editor, gid: str, tags: list[str] | None, checked: dict[str, Any]
               ) -> Callable[[], EditTerms]:
        def terms() -> EditTerms:
            with self.db.read() as cur:
                checked["before"] = document = visibility.visible_item(
                    cur, editor, gid, include_deleted=True, columns=("origin", "owner_edits_only"))
                decided = EditTerms(edit_grant(cur, editor, gid, document),
                                    None if tags is None else [*tags, *self._hidden_tags(cur, editor, gid)])
            self.teams.record(editor)
            return decided
        return terms

    def _check_references(self, editor: Editor, gid: str, markdown: str) -> None:
        try:
            references.check(markdown)
        except references.InvalidReference:
            self._check_writable(editor, gid)  # an item the editor may not see is not found first, as always
            raise

    def _after(self, editor: Editor, gid: str, before: dict[str, Any], receipt: Receipt) -> dict[str, Any]:
        """The item after the editor's change of it, as ``item`` reads it: the row its commit projected
        (``receipt.view``) when that is as visible as ``before``, the row the editor's change was allowed on
        (same scope, not deleted), else read back (and checked) as ``item`` does. Reading it back took a read
        transaction of its own: with 16 editors, a quarter of the edits per second."""
        row = receipt.view
        if row is None or row["deleted"] or row["scope"] != before["scope"]:
            return self.item(editor, gid)
        doc = document(row)
        if not doc["tags"] and not doc["forked_from"]:
            return {**doc, "tag_refs": []}
        with self.db.read() as cur:
            return self._named(cur, editor, doc)


def _settle(future: asyncio.Future[Receipt], command: Any) -> None:
    if not future.done():
        if command.error is not None:
            future.set_exception(command.error)
        else:
            future.set_result(command.result)
