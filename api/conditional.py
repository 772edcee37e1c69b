"""Entity tags and conditional GET: ``If-None-Match`` answers 304 when the client's copy is current.

Every JSON answer of the editor API carries an entity tag that changes whenever
its bytes do. An item's or a tag's also names the head it shows,
``"<head gid>.<digest>"``, so that a client can send it back as ``If-Match``
to base an edit on that head; other answers get a weak tag, ``W/"<digest>"``.
The digest is of the answer itself, never of the head alone: an item's
answer also changes when a second head arrives or a tag it carries is
renamed, and an editor who may not see the item it was forked from gets
other bytes than one who may.

``ConditionalGet`` compares ``If-None-Match`` with that tag (the weak
comparison of RFC 9110, section 13.1.2) and turns a 200 into a 304 without
a body; it leaves the federation protocol and streams alone.
"""

from __future__ import annotations

import hashlib

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# What a 304 keeps of the 200 it replaces (RFC 9110, section 15.4.5).
_KEPT_BY_NOT_MODIFIED = {b"etag", b"cache-control", b"content-location", b"date", b"expires", b"vary"}
_LARGEST_UNTAGGED_BODY = 8 * 1024 * 1024  # answers without a tag larger than this pass untagged


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:20]


def entity_tag(body: bytes, head: str | None = None) -> str:
    """The answer's entity tag: strong and naming the head for an item or a tag, weak otherwise."""
    return f'"{head}.{digest(body)}"' if head else f'W/"{digest(body)}"'


def head_named_by(tag: str) -> str:
    """The head part of an entity tag (or of a bare ``"<head gid>"``), without quotes or W/."""
    return tag.strip().removeprefix("W/").strip('"').split(".", 1)[0]


def matches_any(if_none_match: str, tag: str) -> bool:
    """Whether one of the tags listed in ``If-None-Match`` matches ``tag`` (weak comparison)."""
    if if_none_match.strip() == "*":
        return True
    opaque = tag.removeprefix("W/")
    return any(listed.strip().removeprefix("W/") == opaque for listed in if_none_match.split(","))


class ConditionalGet:
    """Tag JSON answers to GET that carry no tag yet, and answer 304 to an ``If-None-Match`` that matches."""

    def __init__(self, app: ASGIApp, skip_prefixes: tuple[str, ...] = ("/federation",)) -> None:
        self.app = app
        self.skip_prefixes = skip_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"].startswith(self.skip_prefixes):
            await self.app(scope, receive, send)
            return
        if_none_match = Headers(scope=scope).get("if-none-match")
        start: Message | None = None
        held: list[bytes] = []
        passing = False

        async def send_conditionally(message: Message) -> None:
            nonlocal start, passing
            if passing:
                await send(message)
                return
            if message["type"] == "http.response.start":
                headers = Headers(raw=message["headers"])
                if message["status"] != 200 or not headers.get("content-type", "").startswith("application/json"):
                    passing = True
                    await send(message)
                else:
                    start = message
                return
            assert start is not None
            held.append(message.get("body", b""))
            more = message.get("more_body", False)
            if more and sum(map(len, held)) <= _LARGEST_UNTAGGED_BODY:
                return
            passing = True
            body = b"".join(held)
            headers = MutableHeaders(raw=start["headers"])
            if "etag" not in headers and not more:
                headers["etag"] = entity_tag(body)
            tag = headers.get("etag")
            if tag is not None and if_none_match is not None and not more and matches_any(if_none_match, tag):
                kept = [(name, value) for name, value in start["headers"] if name in _KEPT_BY_NOT_MODIFIED]
                await send({"type": "http.response.start", "status": 304, "headers": kept})
                await send({"type": "http.response.body", "body": b""})
                return
            await send(start)
            await send({"type": "http.response.body", "body": body, "more_body": more})

        await self.app(scope, receive, send_conditionally)
