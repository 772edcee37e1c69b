"""The item pages editors read: the list (search, tag and scope filters, paging), an item (its rendered text
with cross-references as links, tags, shares, sources, forks, backlinks, its history drawn as a DAG) and one
version of it, diffed against a parent.

On the library the REST routes use (``GET /items``, ``/items/{gid}``, ``/rendered``, ``/backlinks``,
``/lineage``, ``/history``, ``/versions/{tx}``), so a page shows what the API would answer to the same
editor, and an item the editor may not see is the same "not found" page as one that does not exist.
"""

from __future__ import annotations

import difflib
import functools
from typing import Any, get_args

from fastapi import APIRouter, Request, Response
from markupsafe import Markup, escape
from starlette.concurrency import run_in_threadpool

from api.attachments import Attachments
from api.library import ItemQuery, Library
from api.rendering import PAGE_LINKS
from api.schemas.common import canonical_gid
from api.ui import session
from api.ui.history_graph import graph
from api.ui.render import InvalidForm, error_page, item_gid, page, to_sign_in
from domain.errors import DomainError
from domain.transaction import Scope
from domain.visibility import Editor

router = APIRouter(prefix="/ui", include_in_schema=False)
SCOPES = get_args(Scope)

PAGE = 50


@router.get("/items")
async def items(request: Request, q: str = "", tag: str = "", scope: str = "", cursor: str = "") -> Response:
    editor = await session.editor_of(request)
    if editor is None:
        return to_sign_in()
    library: Library = request.app.state.library
    try:
        query = ItemQuery(tag=_tag(tag), scope=_scope(scope), text=_text(q), cursor=cursor[:400] or None,
                          limit=PAGE)
        listing = request.app.state.search.search if query.text else library.items  # words: ranked, highlighted
        docs, next_cursor = await run_in_threadpool(listing, editor, query)
        tags = await run_in_threadpool(library.tags, editor)
    except DomainError as error:
        return error_page(request, error, editor)
    filters = {"q": q, "tag": query.tag or "", "scope": query.scope or ""}
    return page(request, "items.html", editor=editor, items=docs, tags=tags, scopes=SCOPES, filters=filters,
                next_cursor=next_cursor, first_page=not cursor, deleted=request.query_params.get("deleted"))


@router.get("/items/{item}")
async def item(request: Request, item: str) -> Response:
    editor = await session.editor_of(request)
    if editor is None:
        return to_sign_in()
    try:
        context = await run_in_threadpool(item_context, request.app.state.library, request.app.state.attachments,
                                          editor, item_gid(item))
    except DomainError as error:
        return error_page(request, error, editor)
    return page(request, "item.html", editor=editor, saved=request.query_params.get("saved"), **context)


@router.get("/items/{item}/versions/{tx}")
async def version(request: Request, item: str, tx: str, against: str = "") -> Response:
    editor = await session.editor_of(request)
    if editor is None:
        return to_sign_in()
    try:
        context = await run_in_threadpool(version_context, request.app.state.library, editor, item_gid(item),
                                          item_gid(tx), against)
    except DomainError as error:
        return error_page(request, error, editor)
    return page(request, "version.html", editor=editor, **context)


def item_context(library: Library, attachments: Attachments, editor: Editor, gid: str) -> dict[str, Any]:
    """Everything the item page shows, read as ``editor`` (deleted items too: their page says so)."""
    doc = library.item(editor, gid, include_deleted=True)
    history = library.history(editor, gid, include_deleted=True)
    sources = [library.item(editor, source, include_deleted=True) for source in doc["forked_from"]]
    return {
        "doc": doc,
        "rendered": Markup(library.render(editor, gid, include_deleted=True, links=PAGE_LINKS)["html"]),
        "sources": sources,
        "forks": library.lineage(editor, gid, include_deleted=doc["deleted"]),  # live forks of a live item
        "backlinks": library.backlinks(editor, gid, include_deleted=True),
        "shares": [] if doc["deleted"] else library.shares(editor, gid),
        "attachments": [] if doc["deleted"] else attachments.of_item(editor, gid),
        "graph": graph(history["nodes"], history["heads"]),
    }


def version_context(library: Library, editor: Editor, gid: str, tx_gid: str, against: str) -> dict[str, Any]:
    """One version of the item and its diff against one of its parents (the first, unless ``against``)."""
    doc = library.item(editor, gid, include_deleted=True)
    tx = library.version(editor, gid, tx_gid)
    parents = tx["parents"]
    base_gid = against if against in parents else (parents[0] if parents else None)
    base = library.version(editor, gid, base_gid) if base_gid else None
    state, before = tx["payload"], base["payload"] if base else None
    tag_names = {row["tag_gid"]: row["name"] for row in library.tags(editor)}
    return {
        "doc": doc, "tx": tx, "base": base, "state": state,
        "rendered": Markup(library.preview(editor, state["markdown"], links=PAGE_LINKS).html),
        "diff": diff_lines(before["markdown"] if before else "", state["markdown"]),
        "title_before": before["title"] if before else None,
        "tags_added": [tag_names.get(t, t) for t in state["tags"] if not before or t not in before["tags"]],
        "tags_removed": [tag_names.get(t, t) for t in (before["tags"] if before else []) if t not in state["tags"]],
    }


@functools.lru_cache(maxsize=32)
def diff_lines(before: str, after: str) -> Markup:
    """A unified diff of two texts as escaped lines, added ones ``<ins>``, removed ones ``<del>``; cached (a
    version never changes)."""
    out = []
    for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=3):
        if line.startswith(("---", "+++")):
            continue
        shown = escape(line)
        if line.startswith("@@"):
            out.append(f'<span class="hunk">{shown}\n</span>')
        elif line.startswith("+"):
            out.append(f"<ins>{shown}\n</ins>")
        elif line.startswith("-"):
            out.append(f"<del>{shown}\n</del>")
        else:
            out.append(f"<span>{shown}\n</span>")
    return Markup("".join(out))


def _tag(tag: str) -> str | None:
    try:
        return canonical_gid(tag) if tag else None
    except ValueError:
        raise InvalidForm(f"not a tag: {tag[:80]!r}") from None


def _scope(scope: str) -> str | None:
    if scope and scope not in SCOPES:
        raise InvalidForm(f"not a scope: {scope[:40]!r}")
    return scope or None


def _text(q: str) -> str | None:
    if len(q) > 200 or "\x00" in q:
        raise InvalidForm("the search text is at most 200 characters")
    return q.strip() or None
