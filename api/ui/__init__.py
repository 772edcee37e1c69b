"""The web pages (``/ui``): sign in with a token; merge editors resolve conflicts, editors read and write
items, admins watch federation."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.ui import attachment_pages, conflict_pages, federation_pages, item_forms, item_pages, pages


def serve_ui(app: FastAPI) -> None:
    app.mount("/ui/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="ui-static")
    for module in (pages, conflict_pages, federation_pages, attachment_pages, item_forms, item_pages):
        app.include_router(module.router)
