"""Federation, client side: the drivers of pulls and pushes (the background
workers that run them are ``sync_workers.py``).

- Pull: the sessions of ``domain/replication.py`` decide what to ask and what
  to apply; this module asks over HTTP and applies through the inbox. The
  next page is fetched while this one is applied: the peer reads its outbox
  while we verify and store. A cursor the peer does not know (410) falls back
  to a gap fill by gid-diff.
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
- Keys: every ``key_refresh_interval`` every peer's JWKS and every relay's
  vouches are read again (``key_learning.py``), so a revoked key stops
  verifying within one interval.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, NamedTuple

from domain.application import TransactionIndex
from domain.federation import after_failure
from domain.replication import GapFill, PullResult, PullSession
from domain.transaction import utc_now
from infrastructure.check_pool import Prechecked
from infrastructure.federation_client import CursorGone, FederationClient, PeerError
from infrastructure.inbox import Inbox
from infrastructure.outbox import OUTBOX_BYTES, OUTBOX_COUNT, Outbox
from infrastructure.peers import Peer, PeerStore

RECONCILE_EVERY = 20  # pull rounds between two gid-diffs with every peer (10 min at the 30 s default)
log = logging.getLogger("fedsync.sync")
Progress = Callable[[int], None]


class Pushed(NamedTuple):
    sent: int  # transactions delivered
    more: bool  # the outbox holds more for this subscriber than one batch took


class Syncer:
    def __init__(self, outbox: Outbox, inbox: Inbox, index: TransactionIndex, peers: PeerStore,
                 client: FederationClient, *, retry_cap: float = 60.0, clock: Callable[[], float] = time.time,
                 rand: Callable[[], float] = random.random) -> None:
        self.outbox = outbox
        self.inbox = inbox
        self.index = index  # which gids are stored here already (gap fill)
        self.peers = peers
        self.client = client
        self.retry_cap = retry_cap
        self.clock = clock
        self.rand = rand
        self.sent: Counter[str] = Counter()  # transactions pushed to each subscriber, for /metrics

    # --- pull ------------------------------------------------------------------
    def pull(self, name: str, progress: Progress | None = None) -> PullResult:
        peer = self.peers.get(name)
        session = PullSession(peer.name, peer.pull_cursor)
        stalled = False
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fedsync-prefetch") as prefetch:
            try:
                upcoming = self._ask(prefetch, peer, session)
                while upcoming is not None:
                    try:
                        page, prechecked = upcoming.result()
                    except CursorGone:
                        stalled = self.gap_fill(peer, session.result, progress)
                        break
                    step = session.receive_page(page)
                    upcoming = self._ask(prefetch, peer, session)  # the next page, while this one is applied
                    session.applied(self.inbox.receive_from(
                        peer, step.transactions, cursor=(peer.name, step.cursor) if step.cursor else None,
                        prechecked=prechecked))
                    if progress:
                        progress(len(step.transactions))
            except PeerError as e:
                self.record_failure(peer, e)
                raise
        if session.stalled or stalled:
            error = PeerError(f"the peer said 'more' without moving its cursor past {session.cursor!r} "
                              "(or back to an earlier one): not asked again until its breaker lets us")
            log.warning("pull from %s stopped: %s", peer.name, error, extra={"peer": peer.name, "reason": str(error)})
            self.record_failure(peer, error)
            return session.result
        self._settle_pending(peer)
        self._succeeded(peer)
        return session.result

    def _ask(self, prefetch: ThreadPoolExecutor, peer: Peer, session: PullSession
             ) -> Future[tuple[dict[str, Any], Prechecked | None]] | None:
        request = session.next_request()
        if request is None:
            return None
        return prefetch.submit(self._page, peer, request.after)

    def _page(self, peer: Peer, after: str | None) -> tuple[dict[str, Any], Prechecked | None]:
        """A page of the peer's outbox, its checks started in the check pool as soon as it is here."""
        page = self.client.outbox(peer.name, peer.base_url, after)
        txs = page.get("transactions")
        return page, self.inbox.precheck(peer, txs) if isinstance(txs, list) else None

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
        self._settle_pending(peer)
        return result

    def gap_fill(self, peer: Peer, result: PullResult, progress: Progress | None) -> bool:
        """Our cursor is unknown there: compare gids from the start and fetch what we lack.

        True if the peer's cursor stalled (see ``domain/replication.py``)."""
        session = GapFill(result)
        request = session.next_request()
        while request is not None:
            page = self.client.gids(peer.name, peer.base_url, request.after)
            have = {row["gid"] for row in self.index.locate(page["gids"])}
            step = session.receive_gids(page, have)
            for gids in step.chunks:
                txs = self.client.fetch(peer.name, peer.base_url, gids)
                session.applied(self.inbox.receive_from(peer, txs))
                if progress:
                    progress(len(txs))
            if step.cursor:
                self.peers.set_pull_cursor(peer.name, step.cursor)
            request = session.next_request()
        return session.stalled

    def _settle_pending(self, peer: Peer) -> None:
        self.inbox.retry_pending()
        self.inbox.fetch_pending(peer)

    # --- push ------------------------------------------------------------------
    def push(self, name: str) -> Pushed:
        """Deliver one batch to a subscriber. Its record is read here, not taken from the push loop's
        read: a push that ended in between moved ``push_after``, and a stale one sends a batch again
        (docs/scaling.md)."""
        peer = self.peers.get(name)
        scan = self.outbox.scan(self.outbox.audience_of(peer), peer.push_after, max_count=OUTBOX_COUNT,
                                max_bytes=OUTBOX_BYTES, skip_origin=True)
        if scan.last <= peer.push_after:
            return Pushed(0, more=False)
        if scan.entries:
            try:
                self.client.deliver(peer.name, peer.base_url, [e.tx for e in scan.entries])
            except PeerError as e:
                self.record_failure(peer, e)
                raise
            self._succeeded(peer, acknowledged=scan.last)
        else:
            self.peers.acknowledge(peer.name, scan.last)
        self.sent[peer.name] += len(scan.entries)
        return Pushed(len(scan.entries), scan.more)

    def record_failure(self, peer: Peer, error: PeerError) -> None:
        breaker, next_attempt = after_failure(peer.breaker, peer.attempts, self.clock(), retry_after=error.retry_after,
                                              cap=self.retry_cap, rand=self.rand)
        self.peers.failed(peer.name, utc_now(), str(error), breaker, next_attempt)
        if breaker.state != peer.breaker.state:
            log.warning("breaker for %s is %s (was %s) after: %s", peer.name, breaker.state, peer.breaker.state, error,
                        extra={"peer": peer.name, "breaker": breaker.state, "reason": str(error)})

    def _succeeded(self, peer: Peer, acknowledged: int | None = None) -> None:
        self.peers.succeeded(peer.name, utc_now(), acknowledged)
        if peer.breaker.state != "closed":
            log.warning("breaker for %s is closed (was %s): it answers again", peer.name, peer.breaker.state,
                        extra={"peer": peer.name, "breaker": "closed"})

    def due(self, peer: Peer) -> bool:
        now = self.clock()
        return peer.next_attempt <= now and peer.breaker.allows(now)
