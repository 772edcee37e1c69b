"""Request body size limit: a pure ASGI middleware that answers before parsing.

Who may send how much is settled before a byte of the body is read:

- a request without credentials may carry at most ``ANONYMOUS_MAX_BODY``
  (no anonymous request needs more), anywhere;
- a federation request (``/federation/``) with a body is authenticated here
  first: a node token that does not verify is answered 401 unread, a peer
  gets ``federation_max_body_bytes`` and at most ``PEER_BODIES`` bodies in
  flight at once (429 past that), so no caller can make the node buffer
  more than a few maximum-size bodies; the route takes the caller from here
  (a node token is good for one request);
- an attachment's upload, once the editor's token verified (401 unread otherwise), gets the blob cap; a web
  page's form (``/ui/``, its session cookie verified the same way) the editors' ``max_body_bytes``;
- every other request gets ``max_body_bytes``.

A declared ``Content-Length`` over the limit is refused without reading the
body. Otherwise the body is read (and counted, so a chunked body without a
length is bounded too) before the application sees any of it; the first
byte over the limit ends the request with 413. The application then gets
the buffered body, so nothing downstream ever parses an oversized request.
"""

from __future__ import annotations

import re
import threading
from collections import Counter

from anyio import to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import MEDIA_TYPE, problem_body
from domain.errors import DomainError

ANONYMOUS_MAX_BODY = 64 * 1024
PEER_BODIES = 2
MULTIPART_OVERHEAD = 64 * 1024  # an upload's form around the file's bytes
_UPLOAD = re.compile(r"^(/ui)?/(items/[^/]+/attachments|attachments/[^/]+/content)$")  # attachments' bytes
_SESSION = re.compile(rb"(?:^|;)\s*fedsync_session=([^;\s]{1,4096})")
CALLER = "fedsync.caller"  # where the authenticated calling node goes in the request's state
CALLER_PEER = "fedsync.caller_peer"  # and its peer record, as read to authenticate it


class OneAuthorization:
    """A request with more than one ``Authorization`` header is refused (400) before anything reads one.

    RFC 9110 allows one. Credentials are read in several places (the anonymous rate limit, the body limit,
    the routes), and two headers read there could name two callers: the first by one, the last by another.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and sum(name == b"authorization" for name, _ in scope["headers"]) > 1:
            await _answer(scope, send, 400, "Bad request", "more than one Authorization header; send one",
                          "ambiguous-credentials")
            return
        await self.app(scope, receive, send)


class BodySizeLimit:
    """Editors' requests get ``max_body_bytes``; federation batches (``/federation/``) the larger
    ``federation_max_body_bytes``, since one push batch carries up to 4 MiB of transactions."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, federation_max_body_bytes: int | None = None,
                 upload_max_bytes: int | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.federation_max_body_bytes = federation_max_body_bytes or max_body_bytes
        self.upload_max_bytes = upload_max_bytes or max_body_bytes
        self._in_flight: Counter[str] = Counter()
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is None and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body
            return
        path = scope.get("path", "")
        authorization = headers.get(b"authorization") or _session(path, headers.get(b"cookie"))
        if authorization is None:
            await self._read(scope, receive, send, min(ANONYMOUS_MAX_BODY, self.max_body_bytes), length)
        elif _UPLOAD.match(path) or path.startswith("/ui/"):  # a web page's form: its session checked first
            limit = self.upload_max_bytes + MULTIPART_OVERHEAD if _UPLOAD.match(path) else self.max_body_bytes
            await self._verified(scope, receive, send, authorization.decode("latin-1"), length, limit)
        elif not scope.get("path", "").startswith("/federation/"):
            await self._read(scope, receive, send, self.max_body_bytes, length)
        else:
            await self._from_peer(scope, receive, send, authorization.decode("latin-1"), length)

    async def _from_peer(self, scope: Scope, receive: Receive, send: Send, authorization: str,
                         length: bytes | None) -> None:
        node = getattr(scope["app"].state, "node", None)
        if node is None:  # no node attached (an app without one): nothing to authenticate with
            await self._read(scope, receive, send, self.max_body_bytes, length)
            return
        try:
            caller, peer = await to_thread.run_sync(node.authenticator.authenticate_peer, authorization) \
                or (None, None)
        except DomainError as e:
            await _answer(scope, send, e.status, e.title, e.detail, e.type)
            return
        with self._lock:
            busy = self._in_flight[caller] >= PEER_BODIES
            if not busy:
                self._in_flight[caller] += 1
        if busy:
            await _answer(scope, send, 429, "Too many requests",
                          f"{caller} already has {PEER_BODIES} requests in progress here", "overloaded",
                          [(b"retry-after", b"1")])
            return
        try:
            scope.setdefault("state", {}).update({CALLER: caller, CALLER_PEER: peer})
            await self._read(scope, receive, send, self.federation_max_body_bytes, length)
        finally:
            with self._lock:
                self._in_flight[caller] -= 1
                if not self._in_flight[caller]:
                    del self._in_flight[caller]

    async def _verified(self, scope: Scope, receive: Receive, send: Send, authorization: str,
                        length: bytes | None, limit: int) -> None:
        """A body read only once the editor's token (or page session) verified: an attachment's bytes may be
        large, and a page's form comes without the API's bearer token."""
        tokens = getattr(scope["app"].state, "tokens", None)
        if tokens is not None:
            try:
                await to_thread.run_sync(tokens.verify, authorization.removeprefix("Bearer ").strip())
            except DomainError as e:
                if scope.get("path", "").startswith("/ui/"):  # an expired session: the page sends it to sign in
                    limit = min(ANONYMOUS_MAX_BODY, self.max_body_bytes)
                else:
                    await _answer(scope, send, e.status, e.title, e.detail, e.type)
                    return
        await self._read(scope, receive, send, limit, length)

    async def _read(self, scope: Scope, receive: Receive, send: Send, limit: int, length: bytes | None) -> None:
        if length is not None and length.isdigit() and int(length) > limit:
            await self._too_large(scope, send, limit)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(scope, send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, replaying(b"".join(chunks), receive), send)

    async def _too_large(self, scope: Scope, send: Send, limit: int) -> None:
        await _answer(scope, send, 413, "Content too large",
                      f"the request body is larger than this node accepts from this caller ({limit} bytes)",
                      "content-too-large")


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` (read already) as one message, then what follows."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _answer(scope: Scope, send: Send, status: int, title: str, detail: str, slug: str,
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """A problem document, the body unread (so the connection closes after it)."""
    body = problem_body(status, title, detail, slug, scope.get("path"))
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"), *(headers or [])],
    })
    await send({"type": "http.response.body", "body": body})


def _session(path: str, cookie: bytes | None) -> bytes | None:
    """The web pages' session token (their cookie's), for a page's form under ``/ui/``."""
    if not path.startswith("/ui/") or cookie is None:
        return None
    found = _SESSION.search(cookie)
    return found[1] if found else None
