"""The inbox: taking a batch of transactions from a peer.

- Types the peering does not accept are refused; everything else goes
  through the application (verify against the origin's keys, dedup,
  equivocation), with the pull cursor in the same commit when there is one.
- Keys of an origin we cannot verify yet are learned first
  (``key_learning.py``: from the origin itself when it is a peer, else from
  the sender only if it is a relay).
- Missing ancestors are fetched from the sender (bounded rounds); what still
  lacks parents is held in the pending area (in the same commit) and retried
  when parents arrive, or asked of its sender again on the next pull.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from domain.application import NodeApplication
from domain.errors import Forbidden
from domain.receiving import PENDING, STORED, Outcome
from infrastructure.federation_client import FederationClient, PeerError
from infrastructure.key_learning import KeyLearner
from infrastructure.peers import Peer, PeerStore

ANCESTOR_ROUNDS = 20


class Inbox:
    def __init__(self, app: NodeApplication, peers: PeerStore, keys: KeyLearner, client: FederationClient,
                 on_share_request: Callable[[], Any] = lambda: None) -> None:
        self.app = app
        self.peers = peers
        self.keys = keys
        self.client = client
        self.on_share_request = on_share_request  # a reshare request may have arrived: answer it

    def receive_from(self, peer: Peer, txs: Sequence[Any], cursor: tuple[str, str] | None = None) -> list[Outcome]:
        """Receive a batch from a peer: type filter, keys on demand, ancestors, pending."""
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
        self.keys.learn(peer, wanted)
        outcomes = self.app.receive(wanted, sender=peer.name, cursor=cursor)
        if any(o.status == PENDING for o in outcomes):
            self._fetch_ancestors(peer, [o.gid for o in outcomes if o.status == PENDING])
            outcomes = [self._settled(o) for o in outcomes]
        if any(isinstance(tx, dict) and tx.get("kind") == "share.requested" for tx in wanted):
            self.on_share_request()
        merged, it = [], iter(outcomes)
        for i in range(len(txs)):
            merged.append(refused[i] if i in refused else next(it))
        return merged

    def _settled(self, outcome: Outcome) -> Outcome:
        if outcome.status != PENDING:
            return outcome
        stored = self.app.transactions([outcome.gid])
        return Outcome(outcome.gid, STORED) if stored else outcome

    def _fetch_ancestors(self, peer: Peer, gids: list[str]) -> None:
        """Fetch the histories of held transactions from the sender and retry them."""
        for _ in range(ANCESTOR_ROUNDS):
            pending = [p for p in self.peers.pending() if p["gid"] in set(gids)]
            if not pending:
                return
            try:
                fetched = self.client.fetch(peer.name, peer.base_url, [p["gid"] for p in pending], ancestors=True)
            except PeerError:
                return  # stays pending; retried later
            self.keys.learn(peer, fetched)
            before = self.peers.pending_count()
            self.app.receive(fetched, sender=peer.name)
            self.retry_pending()
            if self.peers.pending_count() >= before:
                return

    def fetch_pending(self, peer: Peer) -> None:
        """Ask a peer again for the ancestors of what it sent that still waits for them.

        The first fetch (at receive time) may have failed; without this, a held
        transaction whose parents lie behind our cursor would wait forever.
        """
        gids = [p["gid"] for p in self.peers.pending() if p["sender"] == peer.name]
        if gids:
            self._fetch_ancestors(peer, gids)

    def retry_pending(self) -> int:
        """Apply held transactions whose parents have arrived; returns how many were settled."""
        rows = self.peers.pending()
        if not rows:
            return 0
        by_sender: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_sender.setdefault(row["sender"], []).append(row["tx"])
        settled = 0
        for sender, txs in by_sender.items():
            outcomes = self.app.receive(txs, sender=sender, from_pending=True)
            settled += sum(o.status != PENDING for o in outcomes)
        if any(row["tx"].get("kind") == "share.requested" for row in rows):
            self.on_share_request()
        return settled
