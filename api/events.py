"""Editors' event streams (``GET /events``, Server-Sent Events): the notices meant for one editor, as they
happen.

Each stream keeps its position in the outbox (the ``id`` of every event it sends), reads the notices after it
(``infrastructure/notices.py``) whenever the node has projected a save, and sends those for this editor: a
conflict on an item the editor may merge and see, an item the editor created that another node changed, an
item shared with the editor's team. A client that reconnects with ``Last-Event-ID`` resumes after that event
and misses nothing; a new stream starts at the end of the outbox. Streams are bounded in number (a 429 past
that), send a comment every 15 s so proxies keep them open, and end when the editor's token is no longer good.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import orjson
from fastapi import Request
from starlette.concurrency import run_in_threadpool

from api.deps import MERGE_ROLES
from domain.errors import DomainError, Overloaded
from domain.visibility import Editor
from infrastructure import notices
from infrastructure.node import Node
from infrastructure.visibility import visible_documents

MAX_STREAMS = 100
KEEP_ALIVE = 15.0  # seconds between two comments on an idle stream
POLL = 1.0  # seconds between two looks at the outbox's end when nothing woke the stream
BATCH = 200  # transactions read per round


class Streams:
    """The open streams of one node, each woken (from any thread) when the node projected a save."""

    def __init__(self, node: Node, limit: int = MAX_STREAMS) -> None:
        self.node, self.limit = node, limit
        self._wakers: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}
        self._lock = threading.Lock()
        node.listeners.append(self.wake)

    def wake(self) -> None:
        with self._lock:
            wakers = list(self._wakers.values())
        for loop, event in wakers:
            loop.call_soon_threadsafe(event.set)

    async def stream(self, request: Request, editor: Editor, last_event_id: str | None) -> AsyncIterator[bytes]:
        """The events for ``editor`` after ``last_event_id`` (or from now on), until the client goes away."""
        event = asyncio.Event()
        with self._lock:
            if len(self._wakers) >= self.limit:
                raise Overloaded(f"this node serves at most {self.limit} event streams at once", retry_after=30)
            self._wakers[id(event)] = (asyncio.get_running_loop(), event)
        return self._events(request, editor, event, await run_in_threadpool(self._start, last_event_id))

    def _start(self, last_event_id: str | None) -> int:
        end = self._end()
        if last_event_id and last_event_id.isdigit() and len(last_event_id) < 19:
            return min(int(last_event_id), end)
        return end

    def _end(self) -> int:
        with self.node.db.read() as cur:
            row = cur.execute("SELECT COALESCE(MAX(seq), 0) AS seq FROM transactions").fetchone()
        return int(row["seq"]) if row else 0

    async def _events(self, request: Request, editor: Editor, event: asyncio.Event,
                      position: int) -> AsyncIterator[bytes]:
        try:
            # The position as the first id: a client that reconnects before any event (an EventSource keeps the
            # id of a block without data too) resumes there, and misses nothing saved meanwhile.
            yield f"retry: 3000\nid: {position}\n: connected\n\n".encode()
            idle = 0.0
            while not await request.is_disconnected():
                found, position = await run_in_threadpool(self._for, editor, position)
                for notice in found:
                    yield (f"id: {notice.seq}\nevent: {notice.kind}\ndata: ".encode()
                           + orjson.dumps(notice.as_dict()) + b"\n\n")
                if found or await self._more(position):
                    idle = 0.0
                    continue
                try:  # woken by a save of this process; a save of another (a command) is seen by polling
                    await asyncio.wait_for(event.wait(), POLL)
                    event.clear()
                except TimeoutError:
                    idle += POLL
                    if idle >= KEEP_ALIVE:
                        if not await self._still_good(request):
                            return
                        yield b": keep-alive\n\n"
                        idle = 0.0
        finally:
            with self._lock:
                self._wakers.pop(id(event), None)

    async def _more(self, position: int) -> bool:
        return await run_in_threadpool(self._end) > position

    async def _still_good(self, request: Request) -> bool:
        """Whether the stream's token is still good (not expired, not revoked)."""
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        try:
            await run_in_threadpool(request.app.state.tokens.verify, token)
        except DomainError:
            return False
        return True

    def _for(self, editor: Editor, position: int) -> tuple[list[notices.Notice], int]:
        """The notices after ``position`` meant for ``editor``, and the position after them."""
        found, position = notices.since(self.node.db, self.node.name, position, BATCH)
        if not found:
            return [], position
        with self.node.db.read() as cur:
            visible = visible_documents(cur, {n.item for n in found}, editor, include_deleted=True, columns=())
        return [n for n in found if n.item in visible and _meant_for(n, editor)], position


def _meant_for(notice: notices.Notice, editor: Editor) -> bool:
    if notice.kind == "conflict.opened":
        return editor.role in MERGE_ROLES
    if notice.kind == "item.edited":
        return notice.item_author == editor.author
    return notice.kind == "item.shared" and notice.team is not None and notice.team == editor.team
