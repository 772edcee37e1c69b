"""Signing in and out of the pages, the language switch, and ``/ui`` itself."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from api.ui import i18n, session
from api.ui.render import error_page, first, form_of, page
from domain.errors import DomainError

router = APIRouter(prefix="/ui", include_in_schema=False)


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
    await run_in_threadpool(session.start, response, request, editor, token)
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    try:
        session.check_form(request, first(await form_of(request), "csrf"))
    except DomainError as error:
        return error_page(request, error, None)
    response = RedirectResponse("/ui/sign-in", status_code=303)
    await run_in_threadpool(session.end, response, request, await session.editor_of(request))
    return response


@router.get("/language/{locale}")
async def switch_language(locale: str, back: str = "/ui") -> Response:
    response = RedirectResponse(back if back.startswith("/ui") and "//" not in back else "/ui", status_code=303)
    if locale in i18n.LOCALES:
        response.set_cookie(i18n.LANGUAGE_COOKIE, locale, samesite="lax", max_age=365 * 86400, path="/")
    return response
