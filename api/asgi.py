"""Small pieces shared by the pure ASGI middlewares."""

from __future__ import annotations

from starlette.types import Message, Send


class StatusWatch:
    """A ``send`` that remembers the response's status (0 until the response starts)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.status = 0

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self._send(message)
