"""The item pages editors write with: create, edit (warned when someone else changed the item meanwhile),
fork, delete, and a preview of a draft's rendered text.

Every form goes through the API's own request model and the library the REST routes use, so it meets the
same limits and rules (visibility, owner-only edits, stale heads) as ``POST /items``, ``PATCH``, ``DELETE``
and ``POST .../forks``. A refused form comes back with the editor's text kept and the reason on top.
"""

from __future__ import annotations

from typing import Any, get_args

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import escape
from starlette.concurrency import run_in_threadpool

from api.library import Library
from api.rendering import PAGE_LINKS
from api.schemas.items import ForkCreate, ItemCreate, ItemEdit
from api.ui import session
from api.ui.item_pages import diff_lines
from api.ui.render import error_page, first, form_of, item_gid, page, to_sign_in, validated
from domain import references
from domain.errors import DomainError, EntityNotFound, StaleHead
from domain.transaction import Scope
from domain.visibility import Editor

router = APIRouter(prefix="/ui", include_in_schema=False)
SCOPES = get_args(Scope)
FIELDS = ("title", "markdown", "tags", "scope", "owner_edits_only")


def draft_of(form: dict[str, list[str]]) -> dict[str, Any]:
    return {"title": first(form, "title"), "markdown": first(form, "markdown").replace("\r\n", "\n"),
            "tags": sorted(set(form.get("tag", []))), "scope": first(form, "scope") or "NETWORK",
            "owner_edits_only": first(form, "owner_edits_only") == "yes"}


def draft_from(doc: dict[str, Any]) -> dict[str, Any]:
    """The form's fields as the item has them now (its tags: those the editor may see; an edit keeps the others)."""
    return {name: doc[name] for name in FIELDS} | {"owner_edits_only": bool(doc["owner_edits_only"]),
                                                   "tags": sorted(ref["gid"] for ref in doc["tag_refs"])}


async def form_page(request: Request, editor: Editor, mode: str, draft: dict[str, Any], *, status_code: int = 200,
                    doc: dict[str, Any] | None = None, **context: Any) -> Response:
    tags = await run_in_threadpool(request.app.state.library.tags, editor)
    return page(request, "item_form.html", status_code, editor=editor, mode=mode, draft=draft, doc=doc,
                tags=tags, scopes=SCOPES, **context)


async def posted(request: Request) -> tuple[Editor | None, dict[str, list[str]]]:
    """The signed-in editor and the form, once its CSRF token and origin are checked (raises CsrfRefused)."""
    editor = await session.editor_of(request)
    if editor is None:
        return None, {}
    form = await form_of(request)
    session.check_form(request, first(form, "csrf"))
    return editor, form


async def signed_in_doc(request: Request, item: str) -> tuple[Editor, dict[str, Any]] | Response:
    """The signed-in editor and the item as they see it, or the page to send instead (sign-in, not found)."""
    editor = await session.editor_of(request)
    if editor is None:
        return to_sign_in()
    try:
        return editor, await run_in_threadpool(request.app.state.library.item, editor, item_gid(item))
    except DomainError as error:
        return error_page(request, error, editor)


async def posted_doc(request: Request, item: str) -> tuple[Editor, dict[str, list[str]], dict[str, Any]] | Response:
    """The signed-in editor, their checked form and the item as they see it, or the page to send instead."""
    editor = None
    try:
        editor, form = await posted(request)
        if editor is None:
            return to_sign_in()
        return editor, form, await run_in_threadpool(request.app.state.library.item, editor, item_gid(item))
    except DomainError as error:
        return error_page(request, error, editor)


# --- create ---------------------------------------------------------------------------------------------
@router.get("/items/new")
async def new_item(request: Request) -> Response:
    editor = await session.editor_of(request)
    if editor is None:
        return to_sign_in()
    return await form_page(request, editor, "create", {"title": "", "markdown": "", "tags": [], "scope": "NETWORK",
                                                       "owner_edits_only": False})


@router.post("/items/new")
async def create_item(request: Request) -> Response:
    library: Library = request.app.state.library
    try:
        editor, form = await posted(request)
    except DomainError as error:
        return error_page(request, error, None)
    if editor is None:
        return to_sign_in()
    draft = draft_of(form)
    try:
        body = validated(ItemCreate, draft)
        gid = await run_in_threadpool(lambda: library.create_item(editor, **body.model_dump()))
    except DomainError as error:
        return await form_page(request, editor, "create", draft, status_code=error.status, refused=str(error))
    return RedirectResponse(f"/ui/items/{gid}?saved=1", status_code=303)


# --- edit -----------------------------------------------------------------------------------------------
@router.get("/items/{item}/edit")
async def edit_page(request: Request, item: str) -> Response:
    found = await signed_in_doc(request, item)
    if isinstance(found, Response):
        return found
    editor, doc = found
    return await form_page(request, editor, "edit", draft_from(doc), doc=doc, parent=doc["head"])


@router.post("/items/{item}/edit")
async def edit_item(request: Request, item: str) -> Response:
    library: Library = request.app.state.library
    found = await posted_doc(request, item)
    if isinstance(found, Response):
        return found
    editor, form, doc = found
    gid = doc["item_gid"]
    draft, parent = draft_of(form), first(form, "parent")
    changed = {name: draft[name] for name in FIELDS if draft[name] != draft_from(doc)[name]}
    if not changed:
        return RedirectResponse(f"/ui/items/{gid}", status_code=303)
    try:
        body = validated(ItemEdit, {"parent": parent, **changed})
        await run_in_threadpool(lambda: library.edit_item(editor, gid, **body.model_dump()))
    except EntityNotFound as error:
        return error_page(request, error, editor)
    except StaleHead as error:
        return await stale_page(request, editor, doc, draft, parent, error)
    except DomainError as error:
        return await form_page(request, editor, "edit", draft, status_code=error.status, doc=doc, parent=parent,
                               refused=str(error))
    return RedirectResponse(f"/ui/items/{gid}?saved=1", status_code=303)


async def stale_page(request: Request, editor: Editor, doc: dict[str, Any], draft: dict[str, Any], parent: str,
                     error: StaleHead) -> Response:
    """Someone changed the item since the editor opened it: show what they changed, keep the editor's text,
    and base the next save on the current head (saving again is the editor's informed choice)."""
    library: Library = request.app.state.library
    try:
        started = await run_in_threadpool(library.version, editor, doc["item_gid"], parent)
        before = started["payload"]["markdown"]
    except DomainError:  # not a version of this item: nothing to compare with
        before = ""
    return await form_page(request, editor, "edit", draft, status_code=error.status, doc=doc, parent=doc["head"],
                           stale=diff_lines(before, doc["markdown"]))


# --- fork -----------------------------------------------------------------------------------------------
@router.get("/items/{item}/fork")
async def fork_page(request: Request, item: str) -> Response:
    found = await signed_in_doc(request, item)
    if isinstance(found, Response):
        return found
    editor, doc = found
    return await form_page(request, editor, "fork", draft_from(doc), doc=doc)


@router.post("/items/{item}/fork")
async def fork_item(request: Request, item: str) -> Response:
    library: Library = request.app.state.library
    found = await posted_doc(request, item)
    if isinstance(found, Response):
        return found
    editor, form, doc = found
    gid = doc["item_gid"]
    draft = draft_of(form)
    try:
        body = validated(ForkCreate, {name: draft[name] for name in ("title", "markdown", "tags", "scope")})
        fork = await run_in_threadpool(lambda: library.fork_item(editor, [gid], **body.model_dump(
            exclude={"also_from"})))
    except DomainError as error:
        return await form_page(request, editor, "fork", draft, status_code=error.status, doc=doc, refused=str(error))
    return RedirectResponse(f"/ui/items/{fork}?saved=1", status_code=303)


# --- delete ---------------------------------------------------------------------------------------------
@router.get("/items/{item}/delete")
async def delete_page(request: Request, item: str) -> Response:
    found = await signed_in_doc(request, item)
    if isinstance(found, Response):
        return found
    editor, doc = found
    return page(request, "delete.html", editor=editor, doc=doc)


@router.post("/items/{item}/delete")
async def delete_item(request: Request, item: str) -> Response:
    library: Library = request.app.state.library
    editor = None
    try:
        editor, form = await posted(request)
        if editor is None:
            return to_sign_in()
        gid = item_gid(item)
        await run_in_threadpool(lambda: library.delete_item(editor, gid, parent=item_gid(first(form, "parent"))))
    except StaleHead:
        doc = await run_in_threadpool(library.item, editor, gid)
        return page(request, "delete.html", 409, editor=editor, doc=doc, stale=True)
    except DomainError as error:
        return error_page(request, error, editor)
    return RedirectResponse(f"/ui/items?deleted={gid}", status_code=303)


@router.post("/items/{item}/restore")
async def restore_item(request: Request, item: str) -> Response:
    library: Library = request.app.state.library
    editor = None
    try:
        editor, form = await posted(request)
        if editor is None:
            return to_sign_in()
        gid = item_gid(item)
        await run_in_threadpool(lambda: library.restore_item(editor, gid, parent=item_gid(first(form, "parent"))))
    except DomainError as error:
        return error_page(request, error, editor)
    return RedirectResponse(f"/ui/items/{gid}?saved=1", status_code=303)


# --- preview --------------------------------------------------------------------------------------------
@router.post("/preview")
async def preview(request: Request) -> Response:
    """A draft's text rendered as the item page would show it (a fragment the page's script puts in place)."""
    editor = None
    try:
        editor, form = await posted(request)
        if editor is None:
            return HTMLResponse("", 401)
        markdown = first(form, "markdown").replace("\r\n", "\n")
        references.check(markdown)
        rendered = await run_in_threadpool(request.app.state.library.preview, editor, markdown, links=PAGE_LINKS)
    except DomainError as error:
        return HTMLResponse(f'<p class="error">{escape(str(error))}</p>', error.status)
    return HTMLResponse(rendered.html, headers={"Cache-Control": "no-store"})
