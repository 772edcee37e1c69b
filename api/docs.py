"""``/docs``: Swagger UI from the ``swagger-ui-bundle`` package, so it works on a network without a CDN.

FastAPI's default page loads Swagger UI's script and stylesheet from a CDN:
on an air-gapped platform network it stays blank. Here they are served from
the installed package under ``/docs/static``. (ReDoc has no such package,
so ``/redoc`` is not offered; ``/openapi.json`` is the schema either way.)
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

STATIC = "/docs/static"


def serve_docs(app: FastAPI) -> None:
    app.mount(STATIC, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title}: API",
                                   swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{STATIC}/swagger-ui.css", swagger_favicon_url="")
