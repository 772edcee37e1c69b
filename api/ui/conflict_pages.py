"""The open conflicts and the page that resolves one.

On the conflict desk the REST routes use: a page shows exactly what ``GET /conflicts/{item}`` answers and a
resolution goes through the same checks as ``POST .../resolve``. A page without a good session sends the
browser to the sign-in page.
"""

from __future__ import annotations

import difflib
import functools
from typing import Any, get_args

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from markupsafe import Markup, escape
from starlette.concurrency import run_in_threadpool

from api.conflict_desk import ConflictDesk
from api.deps import MERGE_ROLES
from api.responses import conflict_page_of, review_of
from api.schemas.conflicts import ConflictResolve, ConflictReview
from api.ui import session
from api.ui.render import error_page, first, form_of, item_gid, page, to_sign_in, validated
from domain.errors import DomainError, EntityNotFound
from domain.merge import has_conflict_markers
from domain.review import marker_lines
from domain.transaction import Scope
from domain.visibility import Editor

router = APIRouter(prefix="/ui", include_in_schema=False)
SCOPES = get_args(Scope)
PAGE = 50  # conflicts a list page shows


@router.get("/conflicts")
async def conflicts(request: Request, fragment: bool = False, cursor: str = "") -> Response:
    editor = await session.editor_of(request)
    if editor is None:
        return to_sign_in()
    desk = ConflictDesk(request.app.state.library)
    try:
        rows, next_cursor = await run_in_threadpool(desk.conflicts, editor, cursor=cursor[:400] or None, limit=PAGE)
    except DomainError as error:
        return error_page(request, error, editor)
    listing = conflict_page_of(rows, next_cursor).conflicts
    return page(request, "conflicts_table.html" if fragment else "conflicts.html", conflicts=listing,
                editor=editor, resolved=request.query_params.get("resolved"), cursor=cursor,
                next_cursor=next_cursor)


@router.get("/conflicts/{item}")
async def conflict(request: Request, item: str) -> Response:
    editor = await session.editor_of(request)
    if editor is None:
        return to_sign_in()
    try:
        return await _review_page(request, editor, item_gid(item))
    except DomainError as error:
        return error_page(request, error, editor)


@router.post("/conflicts/{item}")
async def resolve(request: Request, item: str) -> Response:
    editor = await session.editor_of(request)
    if editor is None:
        return to_sign_in()
    try:
        gid = item_gid(item)
        form = await form_of(request)
        session.check_form(request, first(form, "csrf"))
    except DomainError as error:
        return error_page(request, error, editor)
    if editor.role not in MERGE_ROLES:
        return await _review_page(request, editor, gid, status_code=403, problem="forbidden")
    document = {"title": first(form, "title"), "markdown": first(form, "markdown").replace("\r\n", "\n"),
                "tags": form.get("tag", []), "forked_from": form.get("forked_from", []),
                "deleted": first(form, "outcome") == "delete"}
    desk = ConflictDesk(request.app.state.library)
    try:
        body = validated(ConflictResolve, {"heads": form.get("head", []), "document": document,
                                           "scope": first(form, "scope") or None,
                                           "accept_markers": first(form, "accept_markers") == "yes"})
        await run_in_threadpool(desk.resolve, editor, gid, heads=body.heads, document=body.document.model_dump(),
                                scope=body.scope, accept_markers=body.accept_markers)
    except EntityNotFound as error:
        return error_page(request, error, editor)
    except DomainError as error:
        problem = "markers" if has_conflict_markers(document["markdown"]) and error.status == 422 else (
            "stale" if error.status == 409 else "refused")
        return await _review_page(request, editor, gid, status_code=error.status, problem=problem,
                                  detail=str(error), draft=document, posted_heads=form.get("head", []))
    return RedirectResponse(f"/ui/conflicts?resolved={gid}", status_code=303)


async def _review_page(request: Request, editor: Editor, gid: str, *, status_code: int = 200,
                       **context: Any) -> Response:
    desk = ConflictDesk(request.app.state.library)
    try:
        review, entry = await run_in_threadpool(desk.review, editor, gid)
    except DomainError as error:
        if error.status != 422:  # no open conflict (any more): resolved meanwhile, say so
            raise
        return page(request, "conflicts.html", 200, conflicts=[], editor=editor, resolved=gid)
    shown = review_of(review, entry["title"], entry["since"], entry["hidden"])
    rows = await run_in_threadpool(request.app.state.library.tags, editor)
    tags = {row["tag_gid"]: row["name"] for row in rows}
    draft = context.pop("draft", None) or shown.proposal.document.model_dump()
    return page(request, "conflict.html", status_code, review=shown, columns=columns(shown), draft=draft,
                tags=tags, may_resolve=editor.role in MERGE_ROLES, editor=editor, scopes=SCOPES,
                marker_lines=marker_lines(draft["markdown"]), **context)


def columns(review: ConflictReview) -> list[dict[str, Any]]:
    """The base and each head, side by side, each head's lines marked where they differ from the base."""
    base = review.base.state.markdown if review.base else None
    versions = [*([(review.base, "base")] if review.base else []), *((head, "head") for head in review.heads)]
    return [{"version": version, "label": label,
             "html": marked_lines(version.state.markdown, base if label == "head" else None)}
            for version, label in versions]


@functools.lru_cache(maxsize=32)
def marked_lines(text: str, base: str | None) -> Markup:
    """``text`` as escaped lines, those that differ from ``base`` (None: none) marked as ``<ins>``.

    Cached by the texts: a version's text never changes (transactions are immutable), and diffing and
    escaping a 10,000-line version costs tens of milliseconds a page."""
    lines = text.splitlines()
    changed: set[int] = set()
    if base is not None:
        matcher = difflib.SequenceMatcher(None, base.splitlines(), lines, autojunk=False)
        for tag, _, _, j1, j2 in matcher.get_opcodes():
            if tag != "equal":
                changed.update(range(j1, j2))
    return Markup("".join(
        f'<ins class="changed">{escape(line)}\n</ins>' if number in changed
        else f"<span>{escape(line)}\n</span>" for number, line in enumerate(lines)))
