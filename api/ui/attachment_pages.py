"""Attachments on the web pages: an item page's upload form, and the bytes under ``/ui`` (where the session
cookie goes), through the same service and checks as the API's ``/attachments`` routes."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api.routes.attachments import content_response
from api.ui import session
from api.ui.render import InvalidForm, error_page, item_gid, to_sign_in
from domain.errors import DomainError

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.post("/items/{item}/attachments")
async def upload(request: Request, item: str) -> Response:
    editor = await session.editor_of(request)
    if editor is None:
        return to_sign_in()
    try:
        gid = item_gid(item)
        form = await request.form(max_files=1, max_fields=10)
        session.check_form(request, str(form.get("csrf") or ""))
        file = form.get("file")
        if not isinstance(file, UploadFile) or not file.filename:
            raise InvalidForm("choose a file to attach")
        data = await file.read()
        name = file.filename.replace("/", "_")[:255]
        attachments = request.app.state.attachments
        await run_in_threadpool(lambda: attachments.add(editor, gid, name=name, declared_type=file.content_type,
                                                        data=data))
    except DomainError as error:
        return error_page(request, error, editor)
    return RedirectResponse(f"/ui/items/{gid}?saved=1#attachments-heading", status_code=303)


@router.get("/attachments/{attachment}/content")
async def content(request: Request, attachment: str) -> Response:
    editor = await session.editor_of(request)
    if editor is None:
        return to_sign_in()
    try:
        return await content_response(request.app.state.attachments, editor, item_gid(attachment),
                                      request.headers.get("range"))
    except DomainError as error:
        return error_page(request, error, editor)
