"""Request body size limit: a pure ASGI middleware that answers 413 before parsing.

A declared ``Content-Length`` over the limit is refused without reading the
body. Otherwise the body is read (and counted, so a chunked body without a
length is bounded too) before the application sees any of it; the first
byte over the limit ends the request with 413. The application then gets
the buffered body, so nothing downstream ever parses an oversized request.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import MEDIA_TYPE, problem_body


class BodySizeLimit:
    """Editors' requests get ``max_body_bytes``; federation batches (``/federation/``) the larger
    ``federation_max_body_bytes``, since one push batch carries up to 4 MiB of transactions."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, federation_max_body_bytes: int | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.federation_max_body_bytes = federation_max_body_bytes or max_body_bytes

    def limit_for(self, scope: Scope) -> int:
        federation = scope.get("path", "").startswith("/federation/")
        return self.federation_max_body_bytes if federation else self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is None and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body
            return
        limit = self.limit_for(scope)
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
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, send: Send, limit: int) -> None:
        body = problem_body(
            413, "Content too large",
            f"the request body is larger than this node accepts ({limit} bytes)",
            "content-too-large", scope.get("path"),
        )
        await send({
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close")],
        })
        await send({"type": "http.response.body", "body": body})
