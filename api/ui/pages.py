"""The web pages under ``/ui``: sign-in, the open conflicts and the page that resolves one.

Server-rendered (Jinja2, one stylesheet, one small script, nothing from a CDN) on the same services as the
REST API: the conflict desk for the list, the review and the resolution, so a page shows exactly what
``GET /conflicts/{item}`` answers and a resolution goes through the same checks as ``POST
.../resolve``. A page without a good session sends the browser to the sign-in page.
"""

from __future__ import annotations

import difflib
import functools
from pathlib import Path
from typing import Any, get_args
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.conflict_desk import ConflictDesk
from api.deps import MERGE_ROLES
from api.responses import conflict_page_of, review_of
from api.schemas.common import canonical_gid
from api.schemas.conflicts import ConflictResolve, ConflictReview
from api.ui import i18n, session
from domain.errors import DomainError, EntityNotFound
from domain.merge import has_conflict_markers
from domain.transaction import Scope
from domain.visibility import Editor

HERE = Path(__file__).parent
router = APIRouter(prefix="/ui", include_in_schema=False)
SCOPES = get_args(Scope)


@functools.cache
def environment(locale: str) -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                      extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_translations(i18n.translations(locale), newstyle=True)  # type: ignore[attr-defined]
    return env


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    locale = i18n.chosen(request.cookies.get(i18n.LANGUAGE_COOKIE), request.headers.get("accept-language"))
    token = request.cookies.get(session.SESSION_COOKIE)
    html = environment(locale).get_template(template).render(
        lang=locale, locales=i18n.LOCALES, path=request.url.path, node=request.app.state.node.name,
        csrf=session.csrf_token(token) if token else "", **context)
    return HTMLResponse(html, status_code, headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store",
                                                    "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"})


CSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'"


async def form_of(request: Request) -> dict[str, list[str]]:
    body = (await request.body()).decode("utf-8", "replace")
    return parse_qs(body, keep_blank_values=True, max_num_fields=2000)


def first(form: dict[str, list[str]], name: str, default: str = "") -> str:
    return form.get(name, [default])[0]


def error_page(request: Request, error: DomainError, editor: Editor | None) -> HTMLResponse:
    """A refusal as a page (the API answers the same refusal as a problem document)."""
    return page(request, "error.html", error.status, editor=editor, status=error.status, detail=str(error))


def to_sign_in() -> RedirectResponse:
    return RedirectResponse("/ui/sign-in", status_code=303)


@router.get("")
async def home() -> RedirectResponse:
    return RedirectResponse("/ui/conflicts", status_code=303)


@router.get("/sign-in")
async def sign_in_page(request: Request) -> Response:
    return page(request, "sign_in.html")


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    try:
        session.check_origin(request)
    except DomainError as error:
        return error_page(request, error, None)
    form = await form_of(request)
    token = first(form, "token").strip()
    editor = await session.editor_of(request, token)
    if editor is None:
        return page(request, "sign_in.html", 401, refused=True)
    response = RedirectResponse("/ui/conflicts", status_code=303)
    session.start(response, request, token)
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    try:
        session.check_form(request, first(await form_of(request), "csrf"))
    except DomainError as error:
        return error_page(request, error, None)
    response = RedirectResponse("/ui/sign-in", status_code=303)
    session.end(response)
    return response


@router.get("/language/{locale}")
async def switch_language(locale: str, back: str = "/ui") -> Response:
    response = RedirectResponse(back if back.startswith("/ui") and "//" not in back else "/ui", status_code=303)
    if locale in i18n.LOCALES:
        response.set_cookie(i18n.LANGUAGE_COOKIE, locale, samesite="lax", max_age=365 * 86400, path="/")
    return response


@router.get("/conflicts")
async def conflicts(request: Request, fragment: bool = False) -> Response:
    editor = await session.editor_of(request)
    if editor is None:
        return to_sign_in()
    desk = ConflictDesk(request.app.state.library)
    rows, _ = await run_in_threadpool(desk.conflicts, editor, cursor=None, limit=200)
    listing = conflict_page_of(rows, None).conflicts
    return page(request, "conflicts_table.html" if fragment else "conflicts.html", conflicts=listing,
                editor=editor, resolved=request.query_params.get("resolved"))


@router.get("/conflicts/{item}")
async def conflict(request: Request, item: str) -> Response:
    editor = await session.editor_of(request)
    if editor is None:
        return to_sign_in()
    try:
        return await _review_page(request, editor, _gid(item))
    except DomainError as error:
        return error_page(request, error, editor)


@router.post("/conflicts/{item}")
async def resolve(request: Request, item: str) -> Response:
    editor = await session.editor_of(request)
    if editor is None:
        return to_sign_in()
    try:
        gid = _gid(item)
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
        try:  # the API's own request model: the same limits and formats as POST /conflicts/{item}/resolve
            body = ConflictResolve.model_validate({"heads": form.get("head", []), "document": document,
                                                  "scope": first(form, "scope") or None,
                                                  "accept_markers": first(form, "accept_markers") == "yes"})
        except ValidationError as invalid:
            raise InvalidForm("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                        for e in invalid.errors()[:5])) from None
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


class InvalidForm(DomainError):
    status = 422
    type = "invalid-request"
    title = "Invalid request"


def _gid(item: str) -> str:
    try:
        return canonical_gid(item)
    except ValueError:
        raise EntityNotFound(f"no item {item[:80]!r}") from None


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


def marker_lines(markdown: str) -> list[int]:
    """The 1-based lines of the text that are conflict markers."""
    return [number for number, line in enumerate(markdown.splitlines(), 1)
            if line.startswith(("<<<<<<< ", ">>>>>>> ")) or line == "======="]
