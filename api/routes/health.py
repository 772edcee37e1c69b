"""Operations: liveness, readiness, metrics and a front page, for load balancers, monitors and people.

``/healthz`` says the process answers (it touches nothing else). ``/readyz``
says the node can serve: its store answers within ``READY_TIMEOUT`` seconds
and the read models are at most ``READY_BEHIND`` events behind the store;
else 503 with what is wrong. One store check runs at a time, however many
probes wait on it, so a store that hangs cannot fill the thread pool.
"""

from __future__ import annotations

import asyncio
import html
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.deps import bearer, current_admin, current_editor
from api.errors import MEDIA_TYPE, problem_body
from api.metrics import LOOPBACK, exposition
from infrastructure.node import Node

router = APIRouter(tags=["operations"])
READY_TIMEOUT = 2.0
READY_BEHIND = 1000


class Readiness:
    """The store check behind ``/readyz``: shared by concurrent probes, bounded in time."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._running: asyncio.Future[dict[str, Any]] | None = None

    async def __call__(self) -> dict[str, Any]:
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(run_in_threadpool(self.node.readiness))
        try:
            return await asyncio.wait_for(asyncio.shield(self._running), READY_TIMEOUT)
        except TimeoutError:
            return {"store": f"no answer within {READY_TIMEOUT:g} s"}
        except Exception as e:  # noqa: BLE001 - any failure of the store is "not ready", said in one line
            return {"store": " ".join(str(e).split())[:300] or type(e).__name__}


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (nothing else is checked)."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "the store does not answer, or the views lag"}})
async def readyz(request: Request) -> Any:
    """The store answers and the read models are caught up (within 1,000 events): 200, else 503."""
    state = await request.app.state.readiness()
    if state.get("store") == "ok" and state.get("behind", 0) <= READY_BEHIND:
        return {"status": "ready", **state}
    reason = (f"the store: {state['store']}" if state.get("store") != "ok"
              else f"the read models are {state['behind']} events behind the store")
    body = problem_body(503, "Not ready", f"not ready: {reason}", "not-ready", "/readyz")
    return Response(body, status_code=503, media_type=MEDIA_TYPE, headers={"retry-after": "5"})


@router.get("/metrics", response_class=PlainTextResponse,
            responses={401: {"description": "not on loopback and no admin token"},
                       403: {"description": "not an admin token"}})
async def metrics(request: Request) -> Response:
    """The node's metrics in the Prometheus text format: on loopback, or with an admin token."""
    client = request.client.host if request.client else ""
    if client not in LOOPBACK:
        credentials = await bearer(request)
        editor = await current_editor(request, credentials)
        await current_admin(editor)
    body, media_type = await run_in_threadpool(exposition, request.app.state.metrics)
    return Response(body, media_type=media_type)


@router.get("/", include_in_schema=False)
async def front_page(request: Request) -> Response:
    """A browser goes to the web pages; anything else gets this node's links."""
    if "text/html" in request.headers.get("accept", ""):
        return RedirectResponse("/ui", status_code=303)
    node = request.app.state.node
    return HTMLResponse(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fedsync node</title></head>
<body><h1>fedsync node</h1>
<p>{_escape(node.name)} at {_escape(node.config.base_url)}</p>
<ul>
<li><a href="/docs">API documentation</a> (<a href="/redoc">ReDoc</a>, <a href="/openapi.json">OpenAPI</a>)</li>
<li><a href="/ui">web pages</a> (items, conflicts, federation; sign in with your token)</li>
<li><a href="/healthz">health</a> and <a href="/readyz">readiness</a></li>
<li><a href="/.well-known/fedsync">node information</a> and <a href="/.well-known/jwks.json">keys</a></li>
</ul></body></html>
""")


def _escape(text: str) -> str:
    return html.escape(text)
