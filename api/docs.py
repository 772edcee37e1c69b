"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) from the ``fastapi-offline`` package, so that they work on a
network without a CDN.

FastAPI's default pages load their scripts and stylesheets from a CDN: on an
air-gapped platform network they stay blank. Here the same files are served
from the installed package under ``/docs/static`` (only its files are used,
not its ``FastAPI`` subclass).
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = "/docs/static"
ASSETS = Path(fastapi_offline.__file__).parent / "static"


def serve_docs(app: FastAPI) -> None:
    app.mount(STATIC, StaticFiles(directory=str(ASSETS)), name="api-docs")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=openapi_url, title=f"{app.title}: API",
                                   swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{STATIC}/swagger-ui.css",
                                   swagger_favicon_url=f"{STATIC}/favicon.png")

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=openapi_url, title=f"{app.title}: API",
                              redoc_js_url=f"{STATIC}/redoc.standalone.js", redoc_favicon_url=f"{STATIC}/favicon.png",
                              with_google_fonts=False)
