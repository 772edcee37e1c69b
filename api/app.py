"""The HTTP application: ``create_app(settings, node=None)`` builds it, nothing happens at import.

With a ``node`` (tests), the app uses it as it is. Without, the app opens the
node of ``settings`` when it starts (its lifespan), runs the background sync
workers, and closes both when it stops. One node, so one Application, per
process: endpoints are sync functions run in the thread pool, and the
Application is thread-safe.
"""

from __future__ import annotations

import gc
import importlib.metadata
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from prometheus_client import CollectorRegistry

from api import errors
from api.attachments import Attachments
from api.conditional import ConditionalGet
from api.docs import serve_docs
from api.events import Streams
from api.fast_paths import FastInbox, FastItemEdits
from api.federation_mount import mount_federation, start_node_wide, start_workers, stop_workers
from api.library import Library
from api.limits import BodySizeLimit, OneAuthorization
from api.logs import configure_logging
from api.metrics import NodeCollector, RequestMetrics
from api.rate_limit import AnonymousRateLimit
from api.responses import peer_statuses_of
from api.routes import (
    admin,
    attachments,
    conflicts,
    events,
    federation,
    health,
    items,
    peers,
    search,
    shares,
    tags,
    tokens,
    webhooks,
)
from api.schemas.common import Problem
from api.search import ItemSearch
from api.ui import serve_ui
from infrastructure.duties import Duties
from infrastructure.node import Node
from infrastructure.persistence import postgres_url, store_name
from infrastructure.settings import Settings
from infrastructure.token_registry import TokenGate
from infrastructure.tokens import TokenVerifier

log = logging.getLogger("fedsync.serve")
DESCRIPTION = """\
The editor API of a fedsync node: items (markdown documents with a history
of signed transactions), tags and shares. Every endpoint needs an editor
token (`Authorization: Bearer <token>`, made with `fedsync token create`).
Errors are RFC 9457 problem documents (`application/problem+json`).
"""


def create_app(settings: Settings, node: Node | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if node is not None:
            yield
            return
        opened = Node.open(settings)
        duties = workers = None
        try:
            attach(app, opened, settings)
            log.info("fedsync %s: node %s at %s, store %s, peers: %s", importlib.metadata.version("fedsync"),
                     opened.name, opened.config.base_url, store_name(settings.database_url),
                     ", ".join(peer.name for peer in opened.peers.all()) or "none")
            app.state.tokens.gate.start()  # revocations made by other processes (the CLI)
            url = postgres_url(settings.database_url)
            workers = start_workers(opened, spread=url is not None)
            duties = Duties(url, lambda: start_node_wide(opened, workers), opened.wake_pusher,
                            instance=opened.instance, peers=workers)
            duties.start()
            freeze_startup_heap()
            yield
        finally:
            gc.unfreeze()  # for a process that serves again (tests): what it froze may be collected
            if duties is not None:
                duties.stop()
            if workers is not None:
                stop_workers(opened, workers)
            if hasattr(app.state, "tokens"):
                app.state.tokens.gate.stop()
            opened.close()

    app = FastAPI(title="fedsync", version="1", description=DESCRIPTION, lifespan=lifespan, docs_url=None,
                  redoc_url=None)
    serve_docs(app)  # Swagger UI from a local package, not a CDN
    serve_ui(app)
    errors.install(app)
    for router in (items.router, attachments.router, search.router, events.router, shares.router, tags.router,
                   conflicts.router, admin.router, peers.router, tokens.router, webhooks.router, health.router):
        app.include_router(router)
    mount_federation(app)
    app.state.metrics = CollectorRegistry(auto_describe=False)
    app.add_middleware(FastItemEdits, route=_route(items.router, "PATCH", "/items/{gid}"))  # innermost
    app.add_middleware(FastInbox, route=_route(federation.router, "POST", "/federation/inbox"))
    app.add_middleware(ConditionalGet)  # tags what the routes answer
    app.add_middleware(RequestMetrics, registry=app.state.metrics)  # sees the matched route and a 304
    app.add_middleware(BodySizeLimit, max_body_bytes=settings.max_body_bytes,
                       federation_max_body_bytes=settings.federation_max_body_bytes,
                       upload_max_bytes=settings.max_blob_bytes)
    app.add_middleware(AnonymousRateLimit, rate=settings.anonymous_rate, burst=settings.anonymous_burst)
    app.add_middleware(OneAuthorization)  # before anything reads credentials
    origins = [origin.strip() for origin in settings.cors_origins.split(",") if origin.strip()]
    if origins:  # outermost: a browser's preflight is answered before anything else looks at it
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["*"], max_age=600,
                           allow_headers=["Authorization", "Content-Type", "If-Match", "If-None-Match"],
                           expose_headers=["ETag", "Location"])
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    if node is not None:
        attach(app, node, settings)
    return app


def freeze_startup_heap() -> None:
    """Put what the process holds once it serves (imports, the node, the app: ~120,000 objects) out of the cyclic
    garbage collector's reach. Each full collection walked all of it: 66-86 ms in which a serving process answered
    nothing, about once per 3,000 edits, now 5-9 ms (``docs/scaling.md``). Frozen objects are never collected, so
    a collection first: no garbage is frozen with them."""
    gc.collect()
    gc.freeze()


def app_from_env() -> FastAPI:
    """The app of one worker process of ``fedsync serve --workers N``: settings from the environment."""
    configure_logging(os.environ.get("FEDSYNC_LOG_LEVEL", "info"),
                      access_log=os.environ.get("FEDSYNC_ACCESS_LOG") != "0")  # `serve --no-access-log`
    return create_app(Settings.from_env())


def attach(app: FastAPI, node: Node, settings: Settings) -> None:
    """Give the routes their node, library and token verifier (its gate's refresh thread is started
    by the lifespan of a served app only: tests that pass a node refresh it themselves)."""
    library = Library(node.app, node.db, knows=node.knows)
    node.app.group_commit.before_group = library.read_group_checks
    library.create_tables()
    app.state.node = node
    app.state.library = library
    app.state.search = ItemSearch(node.db, node.projector.search)
    app.state.streams = Streams(node)
    app.state.blobs = node.blobs
    app.state.attachments = Attachments(library, node.blobs, fetch_missing=node.blob_fetcher.fetch_missing)
    gate = TokenGate(node.tokens, refresh_interval=settings.token_refresh_interval)
    app.state.tokens = TokenVerifier(node.name, lambda: node.keyring.token_keyset(), gate)
    app.state.readiness = health.Readiness(node)
    app.state.metrics.register(NodeCollector(node, peer_statuses_of))


def _route(router: APIRouter, method: str, path: str) -> APIRoute:
    return next(r for r in router.routes if isinstance(r, APIRoute) and r.path == path and method in r.methods)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, with every error response as application/problem+json."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    schema.setdefault("components", {}).setdefault("schemas", {})
    schema["components"]["schemas"].setdefault("Problem", Problem.model_json_schema())
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                if status.isdigit() and int(status) >= 400:
                    response["content"] = {errors.MEDIA_TYPE: {"schema": problem_ref}}
                    if status == "422":
                        response["description"] = "invalid request: unknown field, wrong type or invalid value"
    for unused in ("HTTPValidationError", "ValidationError"):
        schema["components"]["schemas"].pop(unused, None)
    app.openapi_schema = schema
    return schema
