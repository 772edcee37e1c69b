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
  ``api.deps.current_editor``, then ``api.routes.items.edit`` (the route's
  own body) on the thread pool, and its answer;
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

import re
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import domain_error
from api.limits import CALLER, replaying
from api.routes.federation import fast_json
from api.routes.items import edit
from api.schemas.federation import InboxRequest
from api.schemas.items import ItemEdit
from domain.errors import DomainError

_ITEM = re.compile(r"/items/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
M = TypeVar("M", bound=BaseModel)
MAX_IF_MATCH = 200  # as the route's header parameter (``api.routes.params.IfMatch``)


class FastItemEdits:
    """Answers the ordinary ``PATCH /items/{gid}``; sends everything else on to ``app``."""

    def __init__(self, app: ASGIApp, route: BaseRoute) -> None:
        self.app = app
        self.route = route  # the FastAPI route it stands for (the request metrics label requests with it)
        self.answered = 0  # edits answered here (tests check that ordinary edits take this path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = _ITEM.fullmatch(scope["path"]) if scope["type"] == "http" and scope["method"] == "PATCH" else None
        fields = _fields(scope["headers"]) if path is not None else None
        if fields is None:
            await self.app(scope, receive, send)
            return
        body = await _body(receive)
        if body is None:  # nobody to answer
            return
        edit_body = _valid(body, ItemEdit)
        if edit_body is None:  # the route answers, from the same bytes
            await self.app(scope, replaying(body, receive), send)
            return
        scope["route"] = self.route
        state = scope["app"].state
        try:
            verifier = state.tokens
            editor = verifier.remembered(fields["token"])
            if editor is None:
                editor = await run_in_threadpool(verifier.verify, fields["token"])
            response = await run_in_threadpool(edit, editor, state.library, path[1], edit_body,
                                               fields.get("if-match"))
        except DomainError as error:
            response = await domain_error(Request(scope), error)
        self.answered += 1
        await response(scope, receive, send)


class FastInbox:
    """Answers a peer's ordinary ``POST /federation/inbox``; sends everything else on to ``app``."""

    def __init__(self, app: ASGIApp, route: BaseRoute) -> None:
        self.app = app
        self.route = route
        self.answered = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        taken = scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/federation/inbox"
        caller = scope.get("state", {}).get(CALLER) if taken else None  # the body limit checked its token
        if caller is None or not _json_body(scope["headers"]):
            await self.app(scope, receive, send)
            return
        body = await _body(receive)
        if body is None:
            return
        batch = _valid(body, InboxRequest)
        if batch is None:
            await self.app(scope, replaying(body, receive), send)
            return
        scope["route"] = self.route
        try:
            results = await run_in_threadpool(scope["app"].state.node.federation.inbox, caller, batch.transactions)
            response = fast_json({"results": results})
        except DomainError as error:
            response = await domain_error(Request(scope), error)
        self.answered += 1
        await response(scope, receive, send)


def _json_body(headers: list[tuple[bytes, bytes]]) -> bool:
    types = [value for name, value in headers if name == b"content-type"]
    return len(types) == 1 and types[0].split(b";", 1)[0].strip().lower() == b"application/json"


def _fields(headers: list[tuple[bytes, bytes]]) -> dict[str, str] | None:
    """The bearer token and If-Match of a request this path takes, or None (the route decides)."""
    fields: dict[str, str] = {}
    json_body = False
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
        elif name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            json_body = media == b"application/json"
    return fields if json_body and "token" in fields else None


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
