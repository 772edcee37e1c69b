"""Mounting the federation protocol and its background workers on the app.

``create_app`` calls ``mount_federation``; ``start_duties`` runs in the
app's lifespan (``fedsync serve``), in the one process of the node that
holds its duties (``infrastructure/duties.py``), so the node pushes to
subscribers, pulls from peers and delivers webhooks while it serves.
"""

from __future__ import annotations

from fastapi import FastAPI

from api.routes import federation
from infrastructure.duties import Stop
from infrastructure.node import Node
from infrastructure.sync import SyncWorkers
from infrastructure.webhook_delivery import start_webhook_worker


def mount_federation(app: FastAPI) -> None:
    app.include_router(federation.router)


def start_workers(node: Node) -> SyncWorkers:
    workers = SyncWorkers(node.syncer, pull_interval=node.settings.pull_interval,
                          refresh_keys=node.key_learner.refresh,
                          key_refresh_interval=node.settings.key_refresh_interval)
    node.listeners.append(workers.notify)
    workers.start()
    return workers


def start_duties(node: Node) -> Stop:
    """Start the node's background duties; the answer stops them."""
    workers = start_workers(node)
    webhooks = start_webhook_worker(node)
    node.runs_duties = True

    def stop() -> None:
        node.runs_duties = False
        for listener in (workers.notify, webhooks.notify):
            if listener in node.listeners:
                node.listeners.remove(listener)
        webhooks.stop()
        workers.stop()

    return stop
