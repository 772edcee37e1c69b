"""An editor's notices as Server-Sent Events (``api/events.py``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from api.deps import CurrentEditor
from api.errors import responses

router = APIRouter(tags=["items"])


@router.get("/events", responses={200: {"content": {"text/event-stream": {}},
                                        "description": "one event per notice, as it happens"},
                                   **responses(401, 429)})
async def events(request: Request, editor: CurrentEditor,
                 last_event_id: Annotated[str | None, Header(max_length=40)] = None) -> StreamingResponse:
    """What this editor is told about, as Server-Sent Events: ``conflict.opened`` (an item the editor may see
    has several heads; merge editors and admins only), ``item.edited`` (another node changed an item this
    editor created), ``item.shared`` (another node shared an item with this editor's team). Each event's
    ``data`` is the notice as JSON and its ``id`` a position: reconnect with ``Last-Event-ID`` to resume
    after it. A new stream starts with what happens from now on."""
    stream = await request.app.state.streams.stream(request, editor, last_event_id)
    return StreamingResponse(stream, media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
