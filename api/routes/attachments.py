"""Attachments: add files to an item (multipart), list them, read their bytes (ranges too), replace, delete."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Header, Request, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from api.attachments import Attachments
from api.deps import CurrentEditor, current_editor
from api.errors import responses
from api.routes.params import AttachmentGidPath, GidPath, json_response
from api.schemas.attachments import AttachmentList, AttachmentOut
from domain.errors import DomainError
from domain.visibility import Editor

router = APIRouter(tags=["attachments"], dependencies=[Depends(current_editor)], responses=responses(401))
Name = Annotated[str | None, Form(max_length=255, description="the file's name (default: the upload's)")]
INLINE = ("image/png", "image/jpeg", "image/gif", "image/webp", "text/plain", "application/pdf")
T = TypeVar("T")
_RANGE = re.compile(r"^bytes=(\d{0,15})-(\d{0,15})$")


class RangeNotSatisfiable(DomainError):
    status = 416
    type = "range-not-satisfiable"
    title = "Range not satisfiable"


def attachment_of(row: dict[str, Any]) -> AttachmentOut:
    return AttachmentOut(gid=row["attachment_gid"], item=row["item_gid"], name=row["name"],
                         media_type=row["media_type"], size=int(row["size"]), sha256=row["sha256"],
                         author=row["author"], origin=row["origin"], created_at=row["created_at"],
                         updated_at=row["updated_at"], head=row["head"],
                         content=f"/attachments/{row['attachment_gid']}/content")


async def _upload(file: UploadFile, name: str | None) -> tuple[str, str | None, bytes]:
    data = await file.read()
    return (name or file.filename or "attachment").replace("/", "_")[:255], file.content_type, data


@router.post("/items/{gid}/attachments", response_model=AttachmentOut, status_code=201,
             responses=responses(403, 404, 409, 413, 422))
async def add_attachment(request: Request, editor: CurrentEditor, gid: GidPath,
                         file: Annotated[UploadFile, File(description="the file")], name: Name = None) -> Response:
    """Attach a file to the item (multipart ``file``, optional ``name``): its bytes go to this node's blob
    store, an ``attachment.added`` transaction carries its name, media type (sniffed), size and SHA-256. The
    item's owner only."""
    filename, declared, data = await _upload(file, name)
    attachments = request.app.state.attachments
    created = await _run(lambda: attachments.add(editor, gid, name=filename, declared_type=declared, data=data))
    row = await _run(lambda: attachments.get(editor, created))
    return json_response(attachment_of(row), 201, {"Location": f"/attachments/{created}"})


@router.get("/items/{gid}/attachments", response_model=AttachmentList, responses=responses(404, 422))
async def list_attachments(request: Request, editor: CurrentEditor, gid: GidPath) -> Response:
    """The item's attachments, oldest first."""
    rows = await _run(lambda: request.app.state.attachments.of_item(editor, gid))
    return json_response(AttachmentList(item=gid, attachments=[attachment_of(r) for r in rows]))


@router.get("/attachments/{attachment}", response_model=AttachmentOut, responses=responses(404, 422))
async def read_attachment(request: Request, editor: CurrentEditor, attachment: AttachmentGidPath) -> Response:
    """An attachment's metadata."""
    return json_response(attachment_of(await _run(lambda: request.app.state.attachments.get(editor, attachment))))


@router.get("/attachments/{attachment}/content", responses={200: {"content": {"application/octet-stream": {}}},
                                                            206: {"description": "the requested byte range"},
                                                            **responses(404, 416, 422, 503)})
async def read_content(request: Request, editor: CurrentEditor, attachment: AttachmentGidPath,
                       range_: Annotated[str | None, Header(alias="range", max_length=100)] = None) -> Response:
    """The attachment's bytes with its media type, ``Content-Disposition`` (inline for images, plain text
    and PDF, else a download) and its SHA-256 as ``ETag``; one ``Range: bytes=a-b`` is answered 206."""
    return await content_response(request.app.state.attachments, editor, attachment, range_)


async def content_response(attachments: Attachments, editor: Editor, attachment: str, range_: str | None) -> Response:
    """An attachment's bytes as a response (the API's and the web pages')."""
    row = await _run(lambda: attachments.get(editor, attachment))
    size = int(row["size"])
    start, end = _range(range_, size)
    row, data = await _run(lambda: attachments.content(editor, attachment, start, end))
    disposition = "inline" if row["media_type"] in INLINE else "attachment"
    headers = {"ETag": f'"{row["sha256"]}"', "Accept-Ranges": "bytes", "X-Content-Type-Options": "nosniff",
               "Content-Security-Policy": "default-src 'none'; sandbox",
               "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(row['name'], safe='')}",
               "Cache-Control": "private, max-age=0, must-revalidate"}
    if range_ is not None:
        headers["Content-Range"] = f"bytes {start}-{start + len(data) - 1}/{size}"
        return Response(data, 206, headers, media_type=row["media_type"])
    return Response(data, 200, headers, media_type=row["media_type"])


@router.put("/attachments/{attachment}/content", response_model=AttachmentOut, responses=responses(403, 404, 413, 422))
async def replace_content(request: Request, editor: CurrentEditor, attachment: AttachmentGidPath,
                          file: Annotated[UploadFile, File(description="the new file")], name: Name = None) -> Response:
    """Replace the attachment's bytes (and name): an ``attachment.replaced`` transaction. Its owner only."""
    filename, declared, data = await _upload(file, name)
    attachments = request.app.state.attachments
    await _run(lambda: attachments.replace(editor, attachment, name=filename, declared_type=declared, data=data))
    return json_response(attachment_of(await _run(lambda: attachments.get(editor, attachment))))


@router.delete("/attachments/{attachment}", status_code=204, responses=responses(403, 404, 422))
async def delete_attachment(request: Request, editor: CurrentEditor, attachment: AttachmentGidPath) -> Response:
    """Delete the attachment (``attachment.deleted``); its bytes stay in the blob store. Its owner only."""
    await _run(lambda: request.app.state.attachments.delete(editor, attachment))
    return Response(status_code=204)


def _range(header: str | None, size: int) -> tuple[int, int | None]:
    """(start, end exclusive) of one ``bytes=a-b`` range over ``size`` bytes; no header: all of it."""
    if header is None:
        return 0, None
    match = _RANGE.match(header.strip())
    if not match or not (match[1] or match[2]):
        raise RangeNotSatisfiable(f"only one range of the form bytes=a-b, bytes=a- or bytes=-n: {header[:60]!r}")
    if not match[1]:  # the last n bytes
        return max(0, size - int(match[2])), None
    start, last = int(match[1]), int(match[2]) if match[2] else size - 1
    if start >= size or last < start:
        raise RangeNotSatisfiable(f"bytes {start}-{last} are not within the {size} bytes of this attachment")
    return start, min(last, size - 1) + 1


async def _run(call: Callable[[], T]) -> T:
    return await run_in_threadpool(call)
