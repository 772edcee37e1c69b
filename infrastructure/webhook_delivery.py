"""Delivering notices to webhooks: one bounded step per webhook, and the worker thread of ``fedsync serve``.

- A step reads the notices after the webhook's position (``notices.since``, a bounded batch), keeps those of
  its kinds and POSTs them as ``{"notices": [...]}``, signed with the webhook's secret (``X-Fedsync-Signature:
  sha256=<hex HMAC-SHA256 of the body>``). Batches without a notice of its kinds only move the position on
  (at most ``SKIP_BATCHES`` of them in one step).
- A 2xx answer moves the position past the batch. Anything else (another status, a timeout, a refused
  connection) leaves it where it was, so the same notices are sent again: delivery is at least once. The
  webhook then waits ``retry_base * 2**attempts`` seconds (capped at ``retry_cap``, shortened by up to half
  at random so that webhooks failing together do not retry in step).
- The worker runs steps for every due webhook, one after the other, woken by every save and every
  ``poll`` seconds (another process on the store, the CLI, saves too). One slow receiver holds the others
  up by at most ``timeout`` seconds per phase of its request (connect, send, wait for the answer's
  headers; the answer's body is never read), and its backoff keeps it from doing so every round.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

from domain.federation import backoff_delay
from domain.transaction import utc_now
from infrastructure.notices import since
from infrastructure.persistence import Database
from infrastructure.webhooks import Webhook, WebhookStore, signature

if TYPE_CHECKING:
    from infrastructure.node import Node

SKIP_BATCHES = 10  # batches of transactions with nothing for a webhook that one step moves past
log = logging.getLogger("fedsync.webhooks")


class WebhookSender:
    def __init__(self, store: WebhookStore, db: Database, node_name: str, *, timeout: float = 5.0,
                 retry_base: float = 1.0, retry_cap: float = 300.0, batch: int = 200,
                 clock: Callable[[], float] = time.time, rand: Callable[[], float] = random.random) -> None:
        self.store = store
        self.db = db
        self.node_name = node_name
        self.timeout = timeout
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.batch = batch
        self.clock = clock
        self.rand = rand
        self.client = httpx.Client(timeout=timeout, follow_redirects=False)

    def close(self) -> None:
        self.client.close()

    def due(self, webhook: Webhook) -> bool:
        return webhook.next_attempt <= self.clock()

    def step(self, webhook: Webhook) -> bool:
        """Deliver (or skip) the next batch for a webhook; True if its position moved (there may be more).

        A failed delivery is recorded on the webhook (``last_error``, ``attempts``, ``next_attempt``)."""
        position = webhook.position
        for _ in range(SKIP_BATCHES):
            notices, end = since(self.db, self.node_name, position, self.batch)
            wanted = [notice for notice in notices if notice.kind in webhook.events]
            if end == position or wanted:
                break
            position = end
        else:
            wanted = []
        if not wanted:
            self.store.advanced(webhook.id, position)
            return position > webhook.position
        error = self._post(webhook, json.dumps({"notices": [n.as_dict() for n in wanted]}).encode())
        if error is None:
            self.store.delivered(webhook.id, end, len(wanted), utc_now())
            return True
        self.store.advanced(webhook.id, position)  # what came before this batch held nothing for it
        delay = backoff_delay(webhook.attempts, base=self.retry_base, cap=self.retry_cap,
                              rand=lambda: 0.5 + self.rand() / 2)
        self.store.failed(webhook.id, utc_now(), error, self.clock() + delay)
        log.warning("webhook %s (%s) failed: %s; next attempt in %.1f s", webhook.id, webhook.url, error, delay,
                    extra={"webhook": webhook.id, "reason": error})
        return False

    def _post(self, webhook: Webhook, body: bytes) -> str | None:
        """POST the body; None on a 2xx answer, else what went wrong, in a few words."""
        headers = {"Content-Type": "application/json", "X-Fedsync-Signature": signature(webhook.secret, body),
                   "X-Fedsync-Delivery": str(uuid.uuid4()), "X-Fedsync-Node": self.node_name}
        try:
            response = self.client.send(self.client.build_request("POST", webhook.url, content=body,
                                                                  headers=headers), stream=True)
            response.close()  # the body says nothing we use: never wait for it
        except httpx.HTTPError as e:
            return f"{type(e).__name__}: {e}"[:300] if str(e) else type(e).__name__
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"


class WebhookWorker:
    """The background thread of ``fedsync serve`` that runs the senders' steps."""

    def __init__(self, sender: WebhookSender, *, poll: float = 1.0, settle: float = 0.05) -> None:
        self.sender = sender
        self.poll = poll
        self.settle = settle  # after an idle round: saves in a burst wake one round, not one each
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="fedsync-webhooks", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        self.thread.join(timeout=3 * self.sender.timeout + 5)
        self.sender.close()

    def notify(self) -> None:
        self.wake.set()

    def round(self) -> bool:
        """One step for every due webhook; True if one of them moved."""
        busy = False
        for webhook in self.sender.store.all():
            if self.stopping.is_set():
                break
            if self.sender.due(webhook):
                try:
                    busy |= self.sender.step(webhook)
                except Exception:  # keep the worker alive, but say what broke
                    log.exception("webhook %s crashed", webhook.id)
        return busy

    def _loop(self) -> None:
        while not self.stopping.is_set():
            self.wake.wait(self.poll)
            self.wake.clear()
            if self.round():
                self.wake.set()  # more may be waiting: go again at once
            else:
                self.stopping.wait(self.settle)


def start_webhook_worker(node: Node) -> WebhookWorker:
    settings = node.settings
    sender = WebhookSender(node.webhooks, node.db, node.name, timeout=settings.webhook_timeout,
                           retry_base=settings.webhook_retry_base, retry_cap=settings.webhook_retry_cap)
    worker = WebhookWorker(sender)
    node.listeners.append(worker.notify)
    worker.start()
    return worker
