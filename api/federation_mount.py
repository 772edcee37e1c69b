"""Mounting the federation protocol and its background workers on the app.

``create_app`` calls ``mount_federation``; ``start_workers`` runs in the
app's lifespan (``fedsync serve``) so the node pushes to subscribers and
pulls from peers while it serves.
"""

from __future__ import annotations

from fastapi import FastAPI

from api.routes import federation
from infrastructure.node import Node
from infrastructure.sync import SyncWorkers


def mount_federation(app: FastAPI) -> None:
    app.include_router(federation.router)


def start_workers(node: Node) -> SyncWorkers:
    workers = SyncWorkers(node.syncer, pull_interval=node.settings.pull_interval,
                          refresh_keys=node.key_learner.refresh,
                          key_refresh_interval=node.settings.key_refresh_interval)
    node.listeners.append(workers.notify)
    workers.start()
    return workers
