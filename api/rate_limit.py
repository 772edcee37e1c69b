"""A budget per client for requests that do not authenticate: a pure ASGI middleware.

Anyone may read a node's public federation data, its keys and its OpenAPI
without credentials, and anyone may present a token that does not verify.
Each such request costs the node real work (a route, a query, a problem
document), so sixty clients doing nothing else could keep a one-process
node busy enough that editors wait. Here each client (its IP address; an
IPv6 address by its /64, which one holder can fill at will) has a token
bucket of ``burst`` requests refilled at ``rate`` per second:

- a request without ``Authorization`` takes one token first, and is answered
  429 (``Retry-After``) when the bucket is empty, before any routing;
- a request with an editor token this node verified before (a memory lookup,
  as every request does anyway) is served at once, never charged;
- any other request with credentials (a new token, a peer's node token)
  takes one token before any work (429 when the bucket is empty), and gets
  it back unless it is answered 401, so credentials that do not verify are
  what it costs, and sixty of them in flight at once cannot overdraw it.

An editor behind the same address as an attacker keeps working; a new
sign-in or a peer from that address waits for the bucket to refill. Buckets live in memory, one per
client, for at most ``clients`` clients (the least recently seen is
forgotten first). Behind a reverse proxy, the client address is the one
uvicorn takes from ``X-Forwarded-For`` (``--forwarded-allow-ips``).
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from api.asgi import StatusWatch
from api.errors import MEDIA_TYPE, problem_body


class TokenBuckets:
    """``burst`` tokens per key, refilled at ``rate`` per second; at most ``size`` keys remembered."""

    def __init__(self, rate: float, burst: float, size: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.size = rate, burst, size
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self._lock = threading.Lock()

    def _level(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.rate)

    def take(self, key: str) -> bool:
        """Take a token if there is one; False (nothing taken) if the bucket is empty."""
        with self._lock:
            now = self._clock()
            tokens = self._level(key, now)
            if tokens < 1:
                return False
            self._store(key, tokens - 1, now)
            return True

    def give_back(self, key: str) -> None:
        """Return a token taken for work that turned out not to count."""
        with self._lock:
            now = self._clock()
            self._store(key, min(self.burst, self._level(key, now) + 1), now)

    def wait(self, key: str) -> int:
        """Whole seconds until the bucket holds a token again."""
        with self._lock:
            return max(1, math.ceil((1 - self._level(key, self._clock())) / self.rate))

    def _store(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.size:
            self._buckets.popitem(last=False)


def client_key(scope: Scope) -> str:
    """The client's address; an IPv6 address by its /64."""
    client = scope.get("client")
    host = client[0] if client else ""
    if ":" in host:
        try:
            return str(ipaddress.IPv6Network(f"{host}/64", strict=False).network_address) + "/64"
        except ValueError:
            return host
    return host


class AnonymousRateLimit:
    """The module docstring's rules; ``rate`` 0 turns them off."""

    def __init__(self, app: ASGIApp, rate: float, burst: int, clients: int = 10_000) -> None:
        self.app = app
        self.buckets = TokenBuckets(rate, burst, clients) if rate > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.buckets is None:
            await self.app(scope, receive, send)
            return
        client = client_key(scope)
        authorization = _header(scope, b"authorization")
        if authorization is None:
            if not self.buckets.take(client):
                await self._refuse(scope, send, client)
                return
            await self.app(scope, receive, send)
            return
        if _known_editor(scope, authorization):
            await self.app(scope, receive, send)
            return
        if not self.buckets.take(client):  # taken before the work: concurrent failures cannot overdraw
            await self._refuse(scope, send, client)
            return
        watch = StatusWatch(send)
        try:
            await self.app(scope, receive, watch)
        finally:
            if watch.status not in (0, 401):  # the credentials verified (or were not the point): given back
                self.buckets.give_back(client)

    async def _refuse(self, scope: Scope, send: Send, client: str) -> None:
        assert self.buckets is not None
        body = problem_body(429, "Too many requests",
                            f"too many requests without valid credentials from {client}; "
                            "authenticate, or wait and retry", "rate-limited", scope.get("path"))
        headers = [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode()),
                   (b"retry-after", str(self.buckets.wait(client)).encode())]
        if _header(scope, b"content-length") not in (None, b"0") or _header(scope, b"transfer-encoding"):
            headers.append((b"connection", b"close"))  # the body stays unread
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def _known_editor(scope: Scope, authorization: bytes) -> bool:
    tokens = getattr(scope["app"].state, "tokens", None)
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    return tokens is not None and scheme.lower() == "bearer" and tokens.remembered(token.strip()) is not None
