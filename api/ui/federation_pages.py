"""The federation pages, for admins: the peers (refreshing, with "retry now" and "sync now"), what waits for
its parents, what peers sent that was refused and why, this node's keys.

Each page shows what the admin API answers: it calls the same route functions (``GET /admin/peers``,
``/admin/pending``, ``/admin/refusals``, ``/admin/keys...``), and each button does what the API's
``POST /admin/peers/{name}/retry`` or ``.../sync`` does. Anyone else signed in gets a 403 page and none of the
data; without a session, the sign-in page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from api.routes.admin import list_key_disputes, list_keys, list_pending, list_refusals, list_revocations
from api.routes.peers import list_peers, retry_peer, sync_peer
from api.ui import session
from api.ui.render import error_page, first, form_of, page, to_sign_in
from domain.errors import DomainError, EntityNotFound, Forbidden
from domain.transaction import NodeName
from domain.visibility import Editor

router = APIRouter(prefix="/ui/federation", include_in_schema=False)
ERROR_CHARS = 500  # a peer's error may quote what it answered: cut, as its last_error is
NODE_NAME = TypeAdapter(NodeName)


class AdminsOnly(Forbidden):
    """A signed-in editor without the admin role asked for a federation page."""


async def admin_of(request: Request, *, posted: bool = False) -> Editor | Response:
    """The signed-in admin, else the answer for everyone else: the sign-in page, or 403 (never the data).
    ``posted``: a button's POST, which must also come from this session's own page (CSRF)."""
    editor = await session.editor_of(request)
    if editor is None:
        return to_sign_in()
    try:
        if posted:
            session.check_form(request, first(await form_of(request), "csrf"))
        if not editor.is_admin:
            raise AdminsOnly("only an admin may see the federation pages")
    except DomainError as error:
        return error_page(request, error, editor)
    return editor


def peer_name(name: str) -> str:
    """A path's peer name as the API's routes take it; a malformed one is not found, as an unknown one is."""
    try:
        return NODE_NAME.validate_python(name)
    except ValidationError:
        raise EntityNotFound(f"no peer {name[:80]!r}") from None


@router.get("")
async def peers(request: Request, fragment: bool = False) -> Response:
    admin = await admin_of(request)
    if isinstance(admin, Response):
        return admin
    return await _peers_page(request, admin, fragment=fragment, notice=None if fragment else _notice(request))


@router.post("/peers/{name}/retry")
async def retry(request: Request, name: str) -> Response:
    admin = await admin_of(request, posted=True)
    if isinstance(admin, Response):
        return admin
    try:
        await run_in_threadpool(retry_peer, request.app.state.node, peer_name(name))
    except DomainError as error:
        return error_page(request, error, admin)
    return RedirectResponse(f"/ui/federation?{urlencode({'retried': name})}", status_code=303)


@router.post("/peers/{name}/sync")
async def sync(request: Request, name: str) -> Response:
    admin = await admin_of(request, posted=True)
    if isinstance(admin, Response):
        return admin
    try:
        result = await run_in_threadpool(sync_peer, request.app.state.node, peer_name(name))
    except DomainError as error:
        if error.status != 502:  # no such peer
            return error_page(request, error, admin)
        failed = {"peer": name, "detail": str(error)[:ERROR_CHARS]}
        return await _peers_page(request, admin, status_code=502, failed=failed)
    counts = {"synced": name, "received": result.received, "stored": result.stored, "pending": result.pending,
              "refused": result.refused}
    return RedirectResponse(f"/ui/federation?{urlencode(counts)}", status_code=303)


@router.get("/pending")
async def pending(request: Request) -> Response:
    admin = await admin_of(request)
    if isinstance(admin, Response):
        return admin
    listing = await run_in_threadpool(list_pending, request.app.state.node, 20)
    return page(request, "federation_pending.html", senders=listing.senders, editor=admin)


@router.get("/refusals")
async def refusals(request: Request) -> Response:
    admin = await admin_of(request)
    if isinstance(admin, Response):
        return admin
    listing = await run_in_threadpool(list_refusals, request.app.state.node)
    return page(request, "federation_refusals.html", listing=listing, editor=admin)


@router.get("/keys")
async def keys(request: Request) -> Response:
    admin = await admin_of(request)
    if isinstance(admin, Response):
        return admin
    node = request.app.state.node
    own, disputes, revocations = await run_in_threadpool(
        lambda: (list_keys(node), list_key_disputes(node), list_revocations(node)))
    return page(request, "federation_keys.html", keys=own.keys, disputes=disputes.disputes,
                revocations=revocations.revocations, editor=admin)


async def _peers_page(request: Request, admin: Editor, *, status_code: int = 200, fragment: bool = False,
                      notice: dict[str, Any] | None = None, **context: Any) -> Response:
    listing = await run_in_threadpool(list_peers, request.app.state.node)
    if notice and notice["peer"] not in {peer.name for peer in listing.peers}:
        notice = None  # a link made elsewhere does not get to put words about an unknown peer on this page
    return page(request, "federation_peers_table.html" if fragment else "federation.html", status_code,
                peers=listing.peers, editor=admin, notice=notice, **context)


def _notice(request: Request) -> dict[str, Any] | None:
    """What the last button did, from the redirect's query (text in a notice, never markup)."""
    query = request.query_params
    if "retried" in query:
        return {"done": "retry", "peer": query["retried"]}
    if "synced" in query:
        counts = {k: int(v) if v.isdigit() else 0 for k in ("received", "stored", "pending", "refused")
                  for v in [query.get(k, "0")[:12]]}
        return {"done": "sync", "peer": query["synced"], **counts}
    return None
