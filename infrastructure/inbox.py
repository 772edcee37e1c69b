"""The inbox: taking a batch of transactions from a peer.

- Types the peering does not accept are refused; everything else goes
  through the application (verify against the origin's keys, dedup,
  equivocation), with the pull cursor in the same commit when there is one.
- Keys of an origin we cannot verify yet are learned first
  (``key_learning.py``: from the origin itself when it is a peer, else from
  the sender only if it is a relay).
- Missing ancestors are fetched from the sender (bounded rounds); what still
  lacks parents is held in the pending area (in the same commit) and retried
  when parents arrive, or asked of its sender again on the next pull. A
  sender may have at most ``pending_max`` transactions held here: past that
  what it sends is still applied (parents settle what is held) but what
  lacks parents is refused (429); retries read each sender's rows apart, so
  one sender's rows never hide another's.
- Every refusal is kept, with its reason, in a bounded record for the admin
  (``refusals.py``): of a batch, of fetched ancestors, of held transactions
  retried.
- Only the application's work runs inside ``slot`` (the caller's bound on
  concurrent batches); learning keys and fetching ancestors, which wait on
  other nodes, run outside it.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from domain.application import NodeApplication
from domain.errors import Forbidden
from domain.receiving import PENDING, REFUSED, STORED, Outcome
from infrastructure.check_pool import CheckPool, Prechecked
from infrastructure.federation_client import FederationClient, PeerError
from infrastructure.key_learning import KeyLearner
from infrastructure.outbox import HAVE_MAX
from infrastructure.peers import Peer, PeerStore
from infrastructure.refusals import RefusalLog

ANCESTOR_ROUNDS = 20
Slot = Callable[[], AbstractContextManager[Any]]


class Inbox:
    def __init__(self, app: NodeApplication, peers: PeerStore, keys: KeyLearner, client: FederationClient,
                 on_share_request: Callable[[], Any] = lambda: None, *, pending_max: int = 5000,
                 refusals: RefusalLog | None = None,
                 after_receive: Callable[[Peer, Sequence[Any], list[Outcome]], None] = lambda *_: None,
                 heads_of: Callable[[Sequence[str]], list[str]] = lambda _: [],
                 check_pool: CheckPool | None = None) -> None:
        self.app = app
        self.pending_max = pending_max
        self.peers = peers
        self.keys = keys
        self.client = client
        self.on_share_request = on_share_request  # a reshare request may have arrived: answer it
        self.outcomes: Counter[tuple[str, str]] = Counter()  # (status, refusal type) -> count, for /metrics
        self.refusals = refusals if refusals is not None else RefusalLog()  # the recent ones, for the admin
        self.after_receive = after_receive  # told of each batch's outcomes (attachments' bytes to fetch)
        self.heads_of = heads_of  # the current heads of stored entities (AccessReader.heads_of)
        self.check_pool = check_pool  # checks pulled pages in other processes (precheck)

    def precheck(self, peer: Peer, txs: Sequence[Any]) -> Prechecked | None:
        """Start checking a pulled page in the check pool (``check_pool.py``); ``receive_from`` takes it."""
        if self.check_pool is None or not self.check_pool.takes(len(txs)):
            return None
        wanted = _accepted(peer, txs)[1]
        self.keys.learn(peer, wanted)  # now, not when the page is received: the workers' key snapshot has them
        return self.check_pool.submit(wanted, source=txs)

    def receive_from(self, peer: Peer, txs: Sequence[Any], cursor: tuple[str, str] | None = None,
                     slot: Slot = contextlib.nullcontext, prechecked: Prechecked | None = None) -> list[Outcome]:
        """Receive a batch from a peer: type filter, keys on demand, ancestors, pending. ``prechecked``:
        ``precheck(peer, txs)``'s answer for this very batch."""
        refused, wanted = _accepted(peer, txs)
        if prechecked is not None and (prechecked.source is not txs or prechecked.size != len(wanted)):
            prechecked = None  # not this batch's answer
        if prechecked is None:  # else ``precheck`` learned this page's keys already
            self.keys.learn(peer, wanted)
        done = None if prechecked is None else prechecked.result()
        with slot():
            outcomes = self.app.receive(wanted, sender=peer.name, cursor=cursor, room=lambda: self._room(peer),
                                        prechecked=done)
        if any(o.status == PENDING for o in outcomes):
            self._fetch_ancestors(peer, [o.gid for o in outcomes if o.status == PENDING], slot)
            outcomes = [self._settled(o) for o in outcomes]
        if any(isinstance(tx, dict) and tx.get("kind") == "share.requested" for tx in wanted):
            self.on_share_request()
        merged, it = [], iter(outcomes)
        for i in range(len(txs)):
            merged.append(refused[i] if i in refused else next(it))
        self.outcomes.update((o.status, o.error.type if o.status == REFUSED and o.error else "") for o in merged)
        self.refusals.record(peer.name, txs, merged)
        self.after_receive(peer, txs, merged)
        return merged

    def _room(self, peer: Peer) -> int:
        """How many more transactions ``peer`` may have held here."""
        return max(0, self.pending_max - self.peers.pending_count(peer.name))

    def _settled(self, outcome: Outcome) -> Outcome:
        if outcome.status != PENDING:
            return outcome
        stored = self.app.transactions([outcome.gid])
        return Outcome(outcome.gid, STORED) if stored else outcome

    def _fetch_ancestors(self, peer: Peer, gids: list[str], slot: Slot = contextlib.nullcontext) -> None:
        """Fetch the histories of held transactions from the sender and retry them.

        An answer holds at most ``FETCH_MAX`` transactions, oldest first, so each round names the heads of
        what this node holds of those entities (``have``) and gets the next part; rounds go on while one
        brings something new or settles a held transaction, at most ``ANCESTOR_ROUNDS``.
        """
        wanted = set(gids)
        for _ in range(ANCESTOR_ROUNDS):
            pending = [p for p in self.peers.pending(peer.name, self.pending_max) if p["gid"] in wanted]
            if not pending:
                return
            entities = _entities_of([p["tx"] for p in pending])
            try:
                fetched = self.client.fetch(peer.name, peer.base_url, [p["gid"] for p in pending], ancestors=True,
                                            have=self.heads_of(entities[:HAVE_MAX])[:HAVE_MAX])
            except PeerError:
                return  # stays pending; retried later
            self.keys.learn(peer, fetched)
            before = self.peers.pending_count()
            with slot():
                outcomes = self.app.receive(fetched, sender=peer.name, room=lambda: self._room(peer))
                self.refusals.record(peer.name, fetched, outcomes)
                self.retry_pending()
            # Progress is a held entity's history stored, not anything new a sender chose to send.
            held = set(entities)
            brought = any(o.status == STORED and isinstance(tx, dict) and tx.get("entity_gid") in held
                          for tx, o in zip(fetched, outcomes, strict=False))
            if self.peers.pending_count() >= before and not brought:
                return

    def fetch_pending(self, peer: Peer) -> None:
        """Ask a peer again for the ancestors of what it sent that still waits for them.

        The first fetch (at receive time) may have failed; without this, a held
        transaction whose parents lie behind our cursor would wait forever.
        """
        gids = [p["gid"] for p in self.peers.pending(peer.name, self.pending_max)]
        if gids:
            self._fetch_ancestors(peer, gids)

    def retry_pending(self) -> int:
        """Apply held transactions whose parents have arrived; returns how many were settled."""
        settled, share_request = 0, False
        for sender in self.peers.pending_senders():
            txs = [row["tx"] for row in self.peers.pending(sender, self.pending_max)]
            outcomes = self.app.receive(txs, sender=sender, from_pending=True)
            self.refusals.record(sender, txs, outcomes)
            settled += sum(o.status != PENDING for o in outcomes)
            share_request = share_request or any(tx.get("kind") == "share.requested" for tx in txs)
        if share_request:
            self.on_share_request()
        return settled


def _accepted(peer: Peer, txs: Sequence[Any]) -> tuple[dict[int, Outcome], list[Any]]:
    """The refusals of the transactions whose entity type ``peer`` may not send (by batch position), and the
    others, in order."""
    refused: dict[int, Outcome] = {}
    wanted: list[Any] = []
    for i, tx in enumerate(txs):
        entity = tx.get("entity") if isinstance(tx, dict) else None
        if entity not in peer.accept_types:
            gid = tx.get("gid", "") if isinstance(tx, dict) else ""
            error = Forbidden(f"entity type {entity!r} is not accepted from {peer.name}")
            refused[i] = Outcome.refused(str(gid), error)
        else:
            wanted.append(tx)
    return refused, wanted


def _entities_of(txs: Sequence[dict[str, Any]]) -> list[str]:
    """The entities of these transactions and the items they belong to (a share's, an attachment's), sorted."""
    payloads = [tx.get("payload") for tx in txs]
    entities = {tx.get("entity_gid") for tx in txs} | {p.get("item") for p in payloads if isinstance(p, dict)}
    return sorted(g for g in entities if isinstance(g, str))
