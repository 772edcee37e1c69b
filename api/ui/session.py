"""Signing in to the pages with the same editor tokens the API takes.

The editor pastes a token once; the node checks it as the API would and hands the browser a token of the
session's own (the same editor, role and team, recorded as a ``web session``, living at most
``SESSION_LIFETIME`` and never past the pasted one), so the pasted token is not kept in the browser. The
session's token sits in a cookie the page's scripts cannot read (``HttpOnly``), that no other site's request
carries (``SameSite=Strict``) and, on HTTPS, that travels over HTTPS only (``Secure``). Every form also
carries a CSRF token derived from the session's token (HMAC), which no other site can know, and every POST
must come from this node's own pages (``Origin``, when the browser sends it). Signing out revokes the
session's token, so a copy of the cookie is worth nothing after it. The session's token is recorded as
issued from the pasted one: revoking the pasted token ends the sessions it opened (within the token refresh
interval in other serving processes, at once in the one that revoked it); ``fedsync token revoke --all-for
NAME`` ends every one of the editor's.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import jwt
from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from domain.errors import DomainError
from domain.visibility import Editor

SESSION_COOKIE = "fedsync_session"
SESSION_LIFETIME = timedelta(hours=8)
SESSION_LABEL = "web session"
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


def _claims(token: str) -> dict[str, Any]:
    """The claims of a token this node verified already."""
    return jwt.decode(token, options={"verify_signature": False})


def start(response: Response, request: Request, editor: Editor, pasted: str) -> None:
    """Sign the browser in as ``editor`` (whose good token is ``pasted``) with a token of the session's own."""
    claims = _claims(pasted)
    lifetime = min(SESSION_LIFETIME, timedelta(seconds=max(1.0, float(claims["exp"]) - time.time())))
    token = request.app.state.node.tokens.issue(editor.name, role=editor.role, team=editor.team,
                                                lifetime=lifetime, label=SESSION_LABEL, parent=claims["jti"])
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", path="/ui",
                        secure=request.url.scheme == "https", max_age=int(lifetime.total_seconds()))


def end(response: Response, request: Request, editor: Editor | None) -> None:
    """Sign the browser out: revoke the session's token (one of a session, not a token the editor pasted in
    a version that kept it) and delete the cookie."""
    token = request.cookies.get(SESSION_COOKIE)
    if editor is not None and token:
        registry = request.app.state.node.tokens
        record = registry.find(_claims(token)["jti"])
        if record is not None and record.label == SESSION_LABEL:
            registry.revoke(record.jti, by=editor.author)
            request.app.state.tokens.gate.refresh()  # refused here at once, elsewhere within the refresh interval
    response.delete_cookie(SESSION_COOKIE, path="/ui", httponly=True, samesite="strict")
