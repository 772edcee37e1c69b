"""Mounting the federation protocol and its background workers on the app.

``create_app`` calls ``mount_federation``; in the app's lifespan (``fedsync
serve``) every process starts its sync workers (``start_workers``), which
push and pull for the peers whose duties it holds, and the one process that
holds the node-wide duties (``infrastructure/duties.py``) also runs what
``start_node_wide`` starts: key refresh, retries of held transactions and
webhook delivery.
"""

from __future__ import annotations

from fastapi import FastAPI

from api.routes import federation
from infrastructure.duties import Stop
from infrastructure.node import Node
from infrastructure.sync_workers import SyncWorkers
from infrastructure.webhook_delivery import start_webhook_worker


def mount_federation(app: FastAPI) -> None:
    app.include_router(federation.router)


def start_workers(node: Node, *, spread: bool) -> SyncWorkers:
    """This process's pusher and puller (``spread``: only for the peers whose duties it holds)."""
    workers = SyncWorkers(node.syncer, pull_interval=node.settings.pull_interval,
                          refresh_keys=node.key_learner.refresh,
                          key_refresh_interval=node.settings.key_refresh_interval, spread=spread)
    node.listeners.append(workers.notify)
    node.held_duties = workers.held
    workers.start()
    return workers


def start_node_wide(node: Node, workers: SyncWorkers) -> Stop:
    """Start the node-wide duties in this process; the answer stops them."""
    webhooks = start_webhook_worker(node)
    workers.node_wide.set()
    node.runs_duties = True

    def stop() -> None:
        node.runs_duties = False
        workers.node_wide.clear()
        if webhooks.notify in node.listeners:
            node.listeners.remove(webhooks.notify)
        webhooks.stop()

    return stop


def stop_workers(node: Node, workers: SyncWorkers) -> None:
    if workers.notify in node.listeners:
        node.listeners.remove(workers.notify)
    workers.stop()
