"""``GET /metrics`` in the Prometheus text format (``prometheus-client``), per node.

What a monitor needs to alert on a federation: request latency by route; the
transactions received from peers by outcome and refusal type, and those
pushed to each subscriber; each peer's queue (lag) and breaker state; open
conflicts; transactions held for missing parents; how far the read models
are behind the store. The counters live in the process (they start at zero
when it starts, as Prometheus counters may); the rest is read from the
store when scraped, so every process on one store reports the same state.

Who may scrape: a client on the loopback interface (Prometheus on the same
host), or any client with an admin token. Behind a reverse proxy the client
is the one uvicorn takes from ``X-Forwarded-For``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Receive, Scope, Send

from api.asgi import StatusWatch
from api.schemas.admin import PeerStatus
from infrastructure.node import Node

LOOPBACK = ("127.0.0.1", "::1")


class NodeCollector(Collector):
    """The node's federation state, read at each scrape."""

    def __init__(self, node: Node, peer_statuses: Callable[[Node], list[PeerStatus]]) -> None:
        self.node = node
        self.peer_statuses = peer_statuses  # api.responses.peer_statuses_of: the same numbers as `peer list`

    def collect(self) -> Iterator[Any]:
        node = self.node
        received = CounterMetricFamily("fedsync_transactions_received", "Transactions received from peers, by "
                                       "outcome and (for refusals) problem type", labels=["status", "reason"])
        for (status, reason), count in sorted(node.syncer.inbox.outcomes.items()):
            received.add_metric([status, reason], count)
        yield received
        sent = CounterMetricFamily("fedsync_transactions_sent", "Transactions pushed to each subscriber",
                                   labels=["peer"])
        for peer, count in sorted(node.syncer.sent.items()):
            sent.add_metric([peer], count)
        yield sent
        lag = GaugeMetricFamily("fedsync_peer_lag", "Outbox entries a subscriber has not acknowledged",
                                labels=["peer"])
        breaker = GaugeMetricFamily("fedsync_peer_breaker", "A peer's circuit breaker: 1 for its current state",
                                    labels=["peer", "state"])
        for status in self.peer_statuses(node):
            lag.add_metric([status.name], status.queue_depth)
            for state in ("closed", "open", "half-open"):
                breaker.add_metric([status.name, state], 1.0 if status.breaker == state else 0.0)
        yield lag
        yield breaker
        readiness = node.readiness()
        yield GaugeMetricFamily("fedsync_transactions_stored", "Transactions in the store", value=readiness["events"])
        yield GaugeMetricFamily("fedsync_projection_lag", "Stored transactions the read models have not applied",
                                value=readiness["behind"])
        with node.db.read() as cur:
            conflicts = cur.execute("SELECT COUNT(*) AS n FROM conflicts").fetchone()
            pending = cur.execute("SELECT COUNT(*) AS n FROM pending").fetchone()
        yield GaugeMetricFamily("fedsync_conflicts_open", "Items whose history has several heads",
                                value=conflicts["n"] if conflicts else 0)
        yield GaugeMetricFamily("fedsync_pending_transactions", "Received transactions held for missing parents",
                                value=pending["n"] if pending else 0)


class RequestMetrics:
    """A pure ASGI middleware: the latency of every request, by method, route template and status."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.latency = Histogram("fedsync_http_request_duration_seconds", "Time to answer a request",
                                 ["method", "route", "status"], registry=registry,
                                 buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, watch = time.perf_counter(), StatusWatch(send)
        try:
            await self.app(scope, receive, watch)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"  # the template, never the raw path
            self.latency.labels(scope["method"], route, str(watch.status or 500)).observe(
                time.perf_counter() - started)


def exposition(registry: CollectorRegistry) -> tuple[bytes, str]:
    return generate_latest(registry), CONTENT_TYPE_LATEST
