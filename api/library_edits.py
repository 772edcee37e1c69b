"""The edits part of the editor's library (``api.library.Library``): an item's edit, from a thread or from the
event loop, and its answer.

Every edit waits for the one thread that leads its group commit, so the edit route keeps that thread's work to
what must be serial (``docs/scaling.md``, 2026-12-07, night):

- The ordinary edit (``api.fast_paths``) is not given a thread: the event loop submits it to the group commit
  (``edit_item_in_loop``) and awaits it. A thread per edit cost two more hand-offs each, and 16 threads
  contending for the interpreter lock made each statement of the leader wait for it.
- Its checks (may the editor see the item, which share lets this node edit it, which of its tags they cannot
  see and so keep) are read by the leader for the whole group at once (``read_group_checks``, the group
  commit's ``before_group``: one query per editor instead of one per edit), the rest only for the edits that
  need it.
- The edit itself is built and signed in the event loop, before it is submitted (``build_ahead``), on the terms
  of an ordinary edit; the leader uses it if the checks decide those terms and its head is still the one it was
  built on (``domain/head_change.py``). Signing in the leader made it give up the interpreter lock and queue to
  get it back, once per edit.

``edit_item`` (the route's own path, for the edits the fast path does not take) runs in a worker thread: on
SQLite its checks are read by the leader, on PostgreSQL (a round trip, better overlapped) first in the thread,
which then builds the edit too.

The answer is the row the edit's own commit projected (``Receipt.view``), not a read of the item afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from domain import references
from domain.application import NodeApplication
from domain.commands import Change, EditTerms, Receipt
from domain.errors import EntityNotFound
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
        commit's leader on SQLite, first in this thread (which builds the edit then) on PostgreSQL."""
        checked: dict[str, Any] = {}
        change = self._edit_change(editor, gid, tags, checked, ahead=not self.db.in_process, parent=parent,
                              title=title, markdown=markdown, scope=scope, owner_edits_only=owner_edits_only)
        receipt = self.app.run(gid, Item, change)
        return self._after(editor, gid, checked["before"], receipt)

    async def edit_item_in_loop(self, editor: Editor, gid: str, *, parent: str, title: str | None,
                                markdown: str | None, tags: list[str] | None, scope: str | None,
                                owner_edits_only: bool | None = None) -> dict[str, Any]:
        """``edit_item`` from the event loop: built here, its checks read by the group commit's leader with those of
        the rest of its group (``read_group_checks``); see the module."""
        checked: dict[str, Any] = {}
        checks = EditChecks(editor, gid)
        loop = asyncio.get_running_loop()
        if markdown is not None:
            try:
                references.check(markdown)
            except references.InvalidReference:  # refused after a read: on PostgreSQL a round trip, not on the loop
                await loop.run_in_executor(None, self._check_writable, editor, gid)
                raise
        change = self._edit_change(editor, gid, tags, checked, ahead=False, parent=parent, title=title,
                                   markdown=markdown, scope=scope, owner_edits_only=owner_edits_only, checks=checks,
                                   references_checked=True)
        future: asyncio.Future[Receipt] = loop.create_future()

        def finished(command: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_settle, future, command)

        self.app.submit(gid, Item, change, finished, hint=checks)
        receipt = await future
        answer = self._answer(checked["before"], receipt)
        if answer is None:  # read back: a local read on SQLite, a round trip on PostgreSQL (in a thread of
            # asyncio's own pool: the caller may hold a place of the thread pool's limit, see api.fast_paths)
            after = functools.partial(self._after, editor, gid, checked["before"], receipt)
            answer = after() if self.db.in_process else await loop.run_in_executor(None, after)
        return answer

    def read_group_checks(self, hints: list[Any]) -> None:
        """The group commit's ``before_group``: the rows its edits' checks read, one query per editor for the
        group instead of one for each edit (``EditChecks``; a round trip each on PostgreSQL)."""
        by_editor: dict[Editor, list[EditChecks]] = {}
        for checks in hints:
            if isinstance(checks, EditChecks):
                by_editor.setdefault(checks.editor, []).append(checks)
        with self.db.read() as cur:
            for editor, group in by_editor.items():
                rows = visibility.visible_documents(cur, [c.gid for c in group], editor, include_deleted=True,
                                                    columns=_CHECKED)
                for checks in group:
                    checks.row, checks.fetched = rows.get(checks.gid), True

    def _edit_change(self, editor: Editor, gid: str, tags: list[str] | None, checked: dict[str, Any], *, ahead: bool,
                     parent: str, markdown: str | None, checks: EditChecks | None = None,
                     references_checked: bool = False, **edit: Any) -> Change[Item]:
        """The edit's change, its markdown's references checked (unless ``references_checked``); its checks are
        read where it is built (the document they read into ``checked["before"]``), or now if ``ahead``, and then
        the edit is built now too."""
        if markdown is not None and not references_checked:
            self._check_references(editor, gid, markdown)
        terms = self._terms(checks or EditChecks(editor, gid), tags, checked)
        if ahead:  # built on the terms decided now
            expected = decided = terms()
            terms = lambda: decided  # noqa: E731
        else:  # built on the terms of an ordinary edit (no share needed, no hidden tags kept)
            expected = EditTerms(None, None if tags is None else list(tags))
        change = self.app.item_edit(parent=parent, author=editor.author, markdown=markdown, terms=terms, **edit)
        self.app.build_ahead(gid, change, expected)  # signed here, not by the group commit's leader
        return change

    def _terms(self, checks: EditChecks, tags: list[str] | None, checked: dict[str, Any]) -> Callable[[], EditTerms]:
        editor, gid = checks.editor, checks.gid

        def terms() -> EditTerms:
            if checks.fetched and checks.row is None:
                raise EntityNotFound(f"no item {gid} on this node")
            if checks.fetched and tags is None and visibility.needs_no_share(editor, checks.row):
                checked["before"], decided = checks.row, EditTerms()  # read with its group's: no query
            else:
                with self.db.read() as cur:
                    checked["before"] = document = checks.row if checks.fetched else visibility.visible_item(
                        cur, editor, gid, include_deleted=True, columns=_CHECKED)
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
        answer = self._answer(before, receipt)
        if answer is not None:
            return answer
        if not _as_visible(before, receipt.view):
            return self.item(editor, gid)
        with self.db.read() as cur:  # only its tags and sources are to be named
            return self._named(cur, editor, document(receipt.view))

    @staticmethod
    def _answer(before: dict[str, Any], receipt: Receipt) -> dict[str, Any] | None:
        """``_after``'s answer when it needs no read (None: it does)."""
        if not _as_visible(before, receipt.view):
            return None
        doc = document(receipt.view)
        return {**doc, "tag_refs": []} if not doc["tags"] and not doc["forked_from"] else None


def _as_visible(before: dict[str, Any], row: dict[str, Any] | None) -> bool:
    """Whether the row an edit's commit projected is as visible as the one its change was allowed on."""
    return row is not None and not row["deleted"] and row["scope"] == before["scope"]


@dataclass(eq=False)
class EditChecks:
    """What an edit's checks read: the item's documents row as its editor may see it (None: not found), read with
    the rest of its group (``fetched``) or by the edit alone."""

    editor: Editor
    gid: str
    row: dict[str, Any] | None = None
    fetched: bool = False


_CHECKED = ("origin", "owner_edits_only")  # the columns of the item's row the checks read, besides visibility's


def _settle(future: asyncio.Future[Receipt], command: Any) -> None:
    if not future.done():
        if command.error is not None:
            future.set_exception(command.error)
        else:
            future.set_result(command.result)
