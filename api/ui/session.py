"""Signing in to the pages with the same editor tokens the API takes.

The editor pastes a token once; the node checks it as the API would and keeps it in a cookie the page's
scripts cannot read (``HttpOnly``), that no other site's request carries (``SameSite=Strict``) and, on
HTTPS, that travels over HTTPS only (``Secure``). Every form also carries a CSRF token derived from the
session's token (HMAC), which no other site can know, and every POST must come from this node's own pages
(``Origin``, when the browser sends it). Signing out deletes the cookie; revoking the token (``fedsync
token revoke``) ends the session everywhere, as for the API.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from domain.errors import DomainError
from domain.visibility import Editor

SESSION_COOKIE = "fedsync_session"
MAX_TOKEN = 4096


class CsrfRefused(DomainError):
    status = 403
    type = "csrf"
    title = "Form refused"


def csrf_token(token: str) -> str:
    """The CSRF token of a session: only someone who holds the session's token can make it."""
    return hmac.new(token.encode(), b"fedsync-ui-csrf", hashlib.sha256).hexdigest()


async def editor_of(request: Request, token: str | None = None) -> Editor | None:
    """The editor whose token ``token`` (default: the session cookie's) is good now, else None."""
    token = token if token is not None else request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > MAX_TOKEN:
        return None
    verifier = request.app.state.tokens
    editor = verifier.remembered(token)
    if editor is None:
        try:
            editor = await run_in_threadpool(verifier.verify, token)
        except DomainError:
            return None
    return editor


def check_origin(request: Request) -> None:
    """Refuse a POST that another site's page sent (also sign-in: no one may sign a browser in as someone
    else); browsers send ``Origin`` with every POST."""
    origin = request.headers.get("origin")
    ours = {request.headers.get("host"), urlsplit(request.app.state.node.config.base_url).netloc}
    if origin and urlsplit(origin).netloc not in ours:  # also "null": a sandboxed or file page
        raise CsrfRefused("this form was sent from another site")


def check_form(request: Request, csrf: str) -> None:
    """Refuse a POST that did not come from this node's own page of this session (``csrf``: the form's)."""
    check_origin(request)
    token = request.cookies.get(SESSION_COOKIE) or ""
    if not token or not hmac.compare_digest(csrf.encode(), csrf_token(token).encode()):
        raise CsrfRefused("this form is not from this session (sign in again and resend it)")


def start(response: Response, request: Request, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", path="/ui",
                        secure=request.url.scheme == "https")


def end(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/ui", httponly=True, samesite="strict")
