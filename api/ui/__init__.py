"""The web pages (``/ui``) for merge editors: sign in with a token, the open conflicts, resolving one."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.ui.pages import router


def serve_ui(app: FastAPI) -> None:
    app.mount("/ui/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="ui-static")
    app.include_router(router)
