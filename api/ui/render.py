"""What every page under ``/ui`` shares: the templates in the page's language, the security headers, reading
a posted form, the signed-in editor, refusals as pages.

Pages are server-rendered (Jinja2, one stylesheet, one small script, nothing from a CDN) on the same services
as the REST API, so a page shows exactly what the API answers and a change passes the same checks.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, ValidationError

from api.schemas.common import canonical_gid
from api.ui import i18n, session
from domain.errors import DomainError, EntityNotFound
from domain.visibility import Editor

HERE = Path(__file__).parent
ModelT = TypeVar("ModelT", bound=BaseModel)
CSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'"


@functools.cache
def environment(locale: str) -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                      extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_translations(i18n.translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.filters["when"] = when
    return env


def when(timestamp: str) -> str:
    """A stored UTC timestamp (ISO 8601) as people read it: ``2026-12-03 21:40 UTC``."""
    return f"{timestamp[:10]} {timestamp[11:16]} UTC" if len(timestamp) >= 16 else timestamp


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    locale = i18n.chosen(request.cookies.get(i18n.LANGUAGE_COOKIE), request.headers.get("accept-language"))
    token = request.cookies.get(session.SESSION_COOKIE)
    html = environment(locale).get_template(template).render(
        lang=locale, locales=i18n.LOCALES, path=request.url.path, node=request.app.state.node.name,
        csrf=session.csrf_token(token) if token else "", **context)
    return HTMLResponse(html, status_code, headers={"Content-Security-Policy": CSP, "Cache-Control": "no-store",
                                                    "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"})


async def form_of(request: Request) -> dict[str, list[str]]:
    body = (await request.body()).decode("utf-8", "replace")
    return parse_qs(body, keep_blank_values=True, max_num_fields=2000)


def first(form: dict[str, list[str]], name: str, default: str = "") -> str:
    return form.get(name, [default])[0]


def error_page(request: Request, error: DomainError, editor: Editor | None) -> HTMLResponse:
    """A refusal as a page (the API answers the same refusal as a problem document)."""
    return page(request, "error.html", error.status, editor=editor, status=error.status, detail=str(error),
                problem=error.type)


def to_sign_in() -> RedirectResponse:
    return RedirectResponse("/ui/sign-in", status_code=303)


class InvalidForm(DomainError):
    status = 422
    type = "invalid-request"
    title = "Invalid request"


def item_gid(item: str) -> str:
    """The canonical gid of a path's item; a malformed one is not found, as an unknown one is."""
    try:
        return canonical_gid(item)
    except ValueError:
        raise EntityNotFound(f"no item {item[:80]!r}") from None


def validated(model: type[ModelT], data: dict[str, Any]) -> ModelT:
    """A form's fields through the API's own request model: the same limits and formats as the REST route,
    a refusal that names the fields."""
    try:
        return model.model_validate(data)
    except ValidationError as invalid:
        raise InvalidForm("; ".join(f"{'.'.join(map(str, e['loc'])) or 'form'}: {e['msg']}"
                                    for e in invalid.errors()[:5])) from None
