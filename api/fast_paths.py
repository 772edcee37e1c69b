"""Item edits (``PATCH /items/{gid}``) and inbox batches (``POST /federation/inbox``) answered without
the framework's per-request work.

Measured with 16 editors on 2 cores (``bench/api.py``, ``py-spy --gil``), two
thirds of the server's interpreter time went to FastAPI and Starlette around
an edit, not to the edit: matching the path against the app's routes through
its included routers, solving the route's dependencies, wrapping the answer
through their middleware. An edit is the one request editors make at that
rate, so this pure ASGI middleware (the innermost, under the metrics, body
limits and rate limits) answers the ordinary edit itself:

- a canonical item gid in the path, one ``Authorization: Bearer`` header, a
  JSON body that is a valid ``ItemEdit``: the same token check as
  ``api.deps.current_editor``, then the route's edit submitted from the
  event loop to the group commit (``api.routes.items.edit_in_loop``, no
  thread of its own), and its answer;
- anything else (no token, another media type, JSON that does not parse or
  validate, a gid to canonicalise) goes on to the FastAPI route with the
  body it sent, so every refusal is the route's own, word for word; a domain
  error raised by the edit is answered by the same handler as the route's.

The route stays declared as it was: it documents the endpoint (OpenAPI) and
answers what this does not take.

A peer's inbox batch (a subscriber's hub pushes one per edit) is taken alike
by ``FastInbox``: the calling node as the body limit authenticated it, a
JSON body valid as ``InboxRequest``, then ``Federation.inbox`` on the thread
pool, as the route does.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

import anyio
import anyio.to_thread
import orjson
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import editor_of
from api.errors import domain_error
from api.limits import CALLER, CALLER_PEER, replaying
from api.routes.federation import fast_json
from api.routes.items import edit_in_loop
from api.schemas.federation import InboxRequest
from api.schemas.items import ItemEdit
from domain.errors import DomainError

_ITEM = re.compile(r"/items/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
M = TypeVar("M", bound=BaseModel)
MAX_IF_MATCH = 200  # as the route's header parameter (``api.routes.params.IfMatch``)


class _FastRoute:
    """A route's ordinary requests answered here: ``taken`` says what one needs (None: not taken, the app
    answers), its body must be valid as ``model``, and ``answer`` makes the response."""

    model: type[BaseModel]

    def __init__(self, app: ASGIApp, route: BaseRoute) -> None:
        self.app = app
        self.route = route  # the FastAPI route it stands for (the request metrics label requests with it)
        self.answered = 0  # requests answered here (tests check that ordinary ones take this path)

    def taken(self, scope: Scope) -> Any: ...

    async def answer(self, scope: Scope, taken: Any, body: Any) -> Response: ...

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        taken = self.taken(scope) if scope["type"] == "http" else None
        if taken is None:
            await self.app(scope, receive, send)
            return
        body = await _body(receive)
        if body is None:  # nobody to answer
            return
        parsed = _valid(body, self.model)
        if parsed is None:  # the route answers, from the same bytes
            await self.app(scope, replaying(body, receive), send)
            return
        scope["route"] = self.route
        try:
            response = await self.answer(scope, taken, parsed)
        except DomainError as error:
            response = await domain_error(Request(scope), error)
        self.answered += 1
        await response(scope, receive, send)


class FastItemEdits(_FastRoute):
    """Answers the ordinary ``PATCH /items/{gid}``; sends everything else on to ``app``."""

    model = ItemEdit

    def taken(self, scope: Scope) -> tuple[str, dict[str, str]] | None:
        path = _ITEM.fullmatch(scope["path"]) if scope["method"] == "PATCH" else None
        fields = _fields(scope["headers"]) if path is not None else None
        return (path[1], fields) if path is not None and fields is not None else None

    async def answer(self, scope: Scope, taken: tuple[str, dict[str, str]], body: ItemEdit) -> Response:
        gid, fields = taken
        state = scope["app"].state
        editor = await editor_of(state.tokens, fields["token"])
        # no thread, but one of the thread pool's places: as many edits at once as there, so a group stays as small
        limiter = _thread_limiter()
        try:  # without ``async with``'s checkpoint when a place is free: a turn of the event loop per edit less
            limiter.acquire_nowait()
        except anyio.WouldBlock:
            await limiter.acquire()
        try:
            return await edit_in_loop(editor, state.library, gid, body, fields.get("if-match"))
        finally:
            limiter.release()


_LIMITERS: WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = WeakKeyDictionary()


def _thread_limiter() -> anyio.CapacityLimiter:
    """The running event loop's thread pool limiter (anyio looks it up through a context variable: ~1 % of the
    interpreter's time with 16 editors, ``py-spy --gil``)."""
    loop = asyncio.get_running_loop()
    limiter = _LIMITERS.get(loop)
    if limiter is None:
        limiter = _LIMITERS[loop] = anyio.to_thread.current_default_thread_limiter()
    return limiter


class FastInbox(_FastRoute):
    """Answers a peer's ordinary ``POST /federation/inbox``; sends everything else on to ``app``."""

    model = InboxRequest

    def taken(self, scope: Scope) -> str | None:
        """The calling node, as the body limit authenticated it (None: not taken)."""
        if scope["method"] != "POST" or scope["path"] != "/federation/inbox" or not _json_body(scope["headers"]):
            return None
        return scope.get("state", {}).get(CALLER)

    async def answer(self, scope: Scope, caller: str, batch: InboxRequest) -> Response:
        results = await run_in_threadpool(scope["app"].state.node.federation.inbox, caller, batch.transactions,
                                          scope["state"].get(CALLER_PEER))  # read to authenticate: not again
        return fast_json({"results": results})


def _json_body(headers: list[tuple[bytes, bytes]]) -> bool:
    types = [value for name, value in headers if name == b"content-type"]
    return len(types) == 1 and types[0].split(b";", 1)[0].strip().lower() == b"application/json"


def _fields(headers: list[tuple[bytes, bytes]]) -> dict[str, str] | None:
    """The bearer token and If-Match of a request this path takes, or None (the route decides)."""
    fields: dict[str, str] = {}
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if "token" in fields or scheme.lower() != "bearer" or not token.strip():
                return None
            fields["token"] = token.strip()
        elif name == b"if-match":
            if "if-match" in fields or len(value) > MAX_IF_MATCH:
                return None
            fields["if-match"] = value.decode("latin-1")
    return fields if "token" in fields and _json_body(headers) else None


async def _body(receive: Receive) -> bytes | None:
    """The request's body (None: the client went away meanwhile)."""
    chunks = []
    while True:  # bounded by the body limit middleware outside this one
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _valid(body: bytes, model: type[M]) -> M | None:
    """The body as ``model``, or None if it is not JSON that orjson reads (the route's parser then
    decides, and may read it after all) or not valid as ``model``."""
    try:
        data: Any = orjson.loads(body)
        return model.model_validate(data) if isinstance(data, dict) else None
    except (orjson.JSONDecodeError, ValidationError):
        return None
