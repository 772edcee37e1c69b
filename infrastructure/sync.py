"""Federation, client side: pulling from peers, pushing to subscribers, and the
background workers that do both.

- Pull: ask a peer's outbox for what follows our cursor, page after page
  until ``more`` is false; each page is applied in one commit together with
  the new cursor, so a crash neither skips nor repeats a page. A cursor the
  peer does not know (410) falls back to a gid-diff: list the peer's gids,
  fetch the ones we lack, and continue from the last listed gid.
- Push: for each subscriber, send what our outbox holds after its
  acknowledged position (visible to it, not its own transactions) in
  batches to its inbox; the position moves only when the inbox answered.
  The queue is the outbox itself, so what is stored is queued in the same
  commit, and a subscriber that was down gets everything when it is back.
- Failures back off exponentially with jitter and feed the peer's circuit
  breaker; ``429`` answers wait for ``Retry-After``.
- Anti-entropy: the puller runs every ``pull_interval``; every
  ``RECONCILE_EVERY``-th round it reconciles by gid-diff instead, which also
  finds what became visible behind the cursor.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from domain.federation import backoff_delay
from domain.transaction import utc_now
from infrastructure.federation import OUTBOX_BYTES, OUTBOX_COUNT, Federation
from infrastructure.federation_client import CursorGone, PeerError
from infrastructure.peers import Peer

GAP_FETCH = 100  # gids per fetch while gap filling (a transaction may hold 1 MB of markdown)
MAX_PAGES = 100_000  # bound on one pull: 50 M transactions
RECONCILE_EVERY = 20  # pull rounds between two gid-diffs with every peer (10 min at the 30 s default)
log = logging.getLogger("fedsync.sync")


@dataclass
class PullResult:
    peer: str
    pages: int = 0
    received: int = 0
    stored: int = 0
    pending: int = 0
    refused: int = 0
    gap_filled: bool = False


class Syncer:
    def __init__(self, federation: Federation, *, retry_cap: float = 60.0,
                 clock: Callable[[], float] = time.time, rand: Callable[[], float] = random.random) -> None:
        self.retry_cap = retry_cap
        self.federation = federation
        self.node = federation.node
        self.peers = federation.peers
        self.client = federation.client
        self.clock = clock
        self.rand = rand

    # --- pull ------------------------------------------------------------------
    def pull(self, name: str, progress: Callable[[int], None] | None = None) -> PullResult:
        peer = self.peers.get(name)
        result = PullResult(name)
        after = peer.pull_cursor
        # The next page is fetched while this one is applied: the peer reads its
        # outbox and we verify and store at the same time (a page says its `last`).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fedsync-prefetch") as prefetch:
            try:
                upcoming = prefetch.submit(self.client.outbox, peer.name, peer.base_url, after)
                for _ in range(MAX_PAGES):
                    try:
                        page = upcoming.result()
                    except CursorGone:
                        self.gap_fill(peer, result, progress)
                        break
                    txs = page["transactions"]
                    last = page.get("last") or after
                    if page.get("more"):
                        upcoming = prefetch.submit(self.client.outbox, peer.name, peer.base_url, last)
                    outcomes = self.federation.receive_from(
                        peer.name, peer.base_url, peer.accept_types, txs,
                        cursor=(peer.name, last) if last else None)
                    self._count(result, outcomes)
                    result.pages += 1
                    after = last
                    if progress:
                        progress(len(txs))
                    if not page.get("more"):
                        break
            except PeerError as e:
                self.record_failure(peer, e)
                raise
        self.federation.retry_pending()
        self.federation.fetch_pending(peer.name, peer.base_url)
        self.peers.succeeded(peer.name, utc_now())
        return result

    def reconcile(self, name: str) -> PullResult:
        """Anti-entropy by gid-diff: list everything the peer lets us see and fetch what we lack.

        Cursor pulls only look ahead; what became visible behind the cursor
        without a new transaction naming it (a concurrent head that widened an
        item's scope again, say) is found only by comparing gids.
        """
        peer = self.peers.get(name)
        result = PullResult(name)
        try:
            self.gap_fill(peer, result, None)
        except PeerError as e:
            self.record_failure(peer, e)
            raise
        self.federation.retry_pending()
        self.federation.fetch_pending(peer.name, peer.base_url)
        return result

    def gap_fill(self, peer: Peer, result: PullResult, progress: Callable[[int], None] | None) -> None:
        """Our cursor is unknown there: compare gids from the start and fetch what we lack."""
        result.gap_filled = True
        after = None
        for _ in range(MAX_PAGES):
            page = self.client.gids(peer.name, peer.base_url, after)
            have = {row["gid"] for row in self.node.app.recorder.locate(page["gids"])}
            lacking = [g for g in page["gids"] if g not in have]
            for i in range(0, len(lacking), GAP_FETCH):
                txs = self.client.fetch(peer.name, peer.base_url, lacking[i:i + GAP_FETCH])
                self._count(result, self.federation.receive_from(peer.name, peer.base_url,
                                                                 peer.accept_types, txs))
                if progress:
                    progress(len(txs))
            after = page.get("last") or after
            if after:
                self.peers.set_pull_cursor(peer.name, after)
            if not page.get("more"):
                return

    @staticmethod
    def _count(result: PullResult, outcomes: list[Any]) -> None:
        result.received += len(outcomes)
        for o in outcomes:
            if o.status == "stored":
                result.stored += 1
            elif o.status == "pending":
                result.pending += 1
            elif o.status == "refused":
                result.refused += 1

    # --- push ------------------------------------------------------------------
    def push(self, name: str) -> int:
        """Deliver one batch to a subscriber; returns how many transactions were sent."""
        peer = self.peers.get(name)
        audience = self.federation.audience(peer.name)
        taken, last, _ = self.federation.scan(audience, peer.push_after, max_count=OUTBOX_COUNT,
                                              max_bytes=OUTBOX_BYTES, skip_origin=True)
        if last <= peer.push_after:
            return 0
        if taken:
            try:
                self.client.deliver(peer.name, peer.base_url, [tx for _, tx, _ in taken])
            except PeerError as e:
                self.record_failure(peer, e)
                raise
            self.peers.succeeded(peer.name, utc_now())
        self.peers.acknowledge(peer.name, last)
        return len(taken)

    def record_failure(self, peer: Peer, error: PeerError) -> None:
        now = self.clock()
        breaker = peer.breaker.probing(now).failed(now, max_cool_down=5 * self.retry_cap)
        delay = error.retry_after or backoff_delay(peer.attempts, cap=self.retry_cap, rand=self.rand)
        next_attempt = max(now + delay, breaker.open_until if breaker.state == "open" else 0.0)
        self.peers.failed(peer.name, utc_now(), str(error), breaker, next_attempt)

    def due(self, peer: Peer) -> bool:
        now = self.clock()
        return peer.next_attempt <= now and peer.breaker.allows(now)


class SyncWorkers:
    """Background threads of ``fedsync serve``: a pusher woken by new outbox
    entries, and a periodic puller (anti-entropy) that also retries pending
    transactions."""

    def __init__(self, syncer: Syncer, *, pull_interval: float = 30.0, push_poll: float = 1.0,
                 reconcile_every: int = RECONCILE_EVERY) -> None:
        self.syncer = syncer
        self.pull_interval = pull_interval
        self.reconcile_every = reconcile_every
        self.push_poll = push_poll
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._push_loop, name="fedsync-push", daemon=True),
                        threading.Thread(target=self._pull_loop, name="fedsync-pull", daemon=True)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        for thread in self.threads:
            thread.join(timeout=10)

    def notify(self) -> None:
        self.wake.set()

    def _push_loop(self) -> None:
        # Every save wakes the pusher. With no subscriber (the common case on a busy
        # editing node) it re-reads the peers only when this process changed them or
        # after push_poll, not once per save.
        idle_since: tuple[int, float] | None = None  # (peers.changes, time) of a scan that found none
        while not self.stopping.is_set():
            self.wake.wait(self.push_poll)
            self.wake.clear()
            if idle_since is not None and idle_since[0] == self.syncer.peers.changes \
                    and time.monotonic() - idle_since[1] < self.push_poll:
                continue
            peers = [peer for peer in self.syncer.peers.all() if peer.subscribed]
            idle_since = None if peers else (self.syncer.peers.changes, time.monotonic())
            busy = False
            for peer in peers:
                if self.syncer.due(peer) and not self.stopping.is_set():
                    try:
                        busy |= self.syncer.push(peer.name) > 0
                    except PeerError as e:
                        log.info("push to %s failed: %s", peer.name, e)
                    except Exception:  # keep the worker alive, but say what broke
                        log.exception("push to %s crashed", peer.name)
            if busy:
                self.wake.set()  # more may be queued: go again at once

    def _pull_loop(self) -> None:
        rounds = 0
        while not self.stopping.wait(self.pull_interval):
            rounds += 1
            full = rounds % self.reconcile_every == 0  # now and then a gid-diff instead of a cursor pull
            for peer in self.syncer.peers.all():
                if peer.accept_types and self.syncer.due(peer) and not self.stopping.is_set():
                    try:
                        (self.syncer.reconcile if full else self.syncer.pull)(peer.name)
                    except PeerError as e:
                        log.info("pull from %s failed: %s", peer.name, e)
                    except Exception:  # keep the worker alive, but say what broke
                        log.exception("pull from %s crashed", peer.name)
            try:
                self.syncer.federation.retry_pending()
            except Exception:
                log.exception("retrying pending transactions crashed")

