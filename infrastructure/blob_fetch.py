"""Fetching attachments' bytes from peers: eagerly after their transactions arrive, and on first read.

An attachment transaction carries the SHA-256 of its bytes, never the bytes. When one arrives from a peer, its
bytes are queued for fetching from that peer (``GET /federation/blobs/{sha256}``) by one background thread, so
no push or pull waits for a download. A read of bytes not here yet asks the peers directly (``fetch_missing``).
Either way the bytes are kept only when they hash to what the transaction says (``put_expecting``): a peer that
sends other bytes is refused, logged and recorded with the other refusals, and the next peer is asked.
Everything is bounded: the blob cap per download, the queue's length (past it, the read-time fetch catches up),
the peers asked per read.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from typing import Any

from domain.errors import DomainError
from domain.receiving import STORED, Outcome
from infrastructure.blobs import BlobStore
from infrastructure.federation_client import FederationClient, PeerError
from infrastructure.peers import Peer, PeerStore
from infrastructure.refusals import RefusalLog

log = logging.getLogger(__name__)
QUEUE_MAX = 10_000
PEERS_PER_READ = 5
CLOSE_WAIT = 30.0


class BlobFetcher:
    def __init__(self, blobs: BlobStore, client: FederationClient, peers: PeerStore, refusals: RefusalLog, *,
                 max_bytes: int) -> None:
        self.blobs, self.client, self.peers, self.refusals = blobs, client, peers, refusals
        self.max_bytes = max_bytes
        self._queue: queue.Queue[tuple[str, str, dict[str, Any]] | None] = queue.Queue(QUEUE_MAX)
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    # --- after a batch arrived ----------------------------------------------------------------------------
    def after_receive(self, peer: Peer, txs: Sequence[Any], outcomes: Sequence[Outcome]) -> None:
        """Queue the bytes of the attachments this batch stored, to fetch from the peer that sent them."""
        for tx, outcome in zip(txs, outcomes, strict=False):
            if outcome.status == STORED and tx.get("entity") == "attachment" and not tx["payload"]["deleted"] \
                    and not self.blobs.has(tx["payload"]["sha256"]):
                self._start()
                try:
                    self._queue.put_nowait((peer.name, peer.base_url, tx))
                except queue.Full:
                    return  # a read fetches them

    def _start(self) -> None:
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="blob-fetch", daemon=True)
                self._worker.start()

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            name, base_url, tx = job
            if not self.blobs.has(tx["payload"]["sha256"]):
                self._fetch_from(name, base_url, tx)

    def close(self, wait: float = CLOSE_WAIT) -> None:
        """Stop after the queued downloads (a command such as ``fedsync sync`` fetches what it brought), waiting
        at most ``wait`` seconds; what is left is fetched on first read."""
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            self._queue.put(None)
            worker.join(wait)

    # --- on a read ----------------------------------------------------------------------------------------
    def fetch_missing(self, sha256: str) -> bool:
        """Ask the peers (a few, the relays first) for bytes this node lacks; True once they are here."""
        peers = sorted(self.peers.all(), key=lambda p: (not p.relay, p.name))[:PEERS_PER_READ]
        tx = {"gid": "", "entity": "attachment", "payload": {"sha256": sha256}}
        return any(self._fetch_from(peer.name, peer.base_url, tx) for peer in peers)

    def _fetch_from(self, name: str, base_url: str, tx: dict[str, Any]) -> bool:
        sha256 = tx["payload"]["sha256"]
        try:
            data = self.client.blob(name, base_url, sha256, self.max_bytes)
            self.blobs.put_expecting(sha256, data)
        except PeerError as e:
            log.info("attachment bytes %s not fetched from %s: %s", sha256, name, e)
            return False
        except DomainError as e:  # other bytes than the hash says, or too many: refused, never kept
            log.warning("attachment bytes %s from %s refused: %s", sha256, name, e)
            self.refusals.record(name, [tx], [Outcome.refused(tx.get("gid") or sha256, e)])
            return False
        return True
