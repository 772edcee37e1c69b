"""Federation, server side: what a node answers its peers (docs/protocol.md).

Each answer checks the protocol's limits, then reads the outbox or hands the
batch to the inbox:

- Outbox pages carry ``last``, the caller's cursor: the last outbox entry
  examined (visible or not), sealed for the caller, never its gid; and
  ``more``.
- The inbox takes one batch per sender at a time (a second one is answered
  429), and at most ``inbox_concurrency`` batches do the application's work
  at once (a batch waits up to ``SLOT_WAIT`` seconds for a slot, then 429);
  key learning and ancestor fetches wait on other nodes outside the slot, so
  a slow peer holds nobody else's. A batch in which every transaction was
  refused is answered as an error, with every reason.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from domain.errors import BatchRefused, Overloaded, TooLarge
from domain.receiving import REFUSED, Outcome
from infrastructure.inbox import Inbox
from infrastructure.key_directory import KeyDirectory
from infrastructure.outbox import FETCH_MAX, GIDS_COUNT, HAVE_MAX, OUTBOX_BYTES, OUTBOX_COUNT, Outbox
from infrastructure.peers import Peer, PeerStore

INBOX_MAX = 1000
SLOT_WAIT = 5.0


class Federation:
    def __init__(self, outbox: Outbox, inbox: Inbox, peers: PeerStore, keys: KeyDirectory, *,
                 inbox_concurrency: int = 2) -> None:
        self.outbox = outbox
        self._inbox = inbox
        self.peers = peers
        self.keys = keys
        self._inbox_slots = threading.BoundedSemaphore(inbox_concurrency)
        self._senders: set[str] = set()  # senders with a batch in progress
        self._senders_lock = threading.Lock()

    def outbox_page(self, caller: str | None, after: str | None) -> dict[str, Any]:
        page = self.outbox.page(caller, after, max_count=OUTBOX_COUNT, max_bytes=OUTBOX_BYTES)
        return {"transactions": [e.tx for e in page.entries], "more": page.more, "last": page.last}

    def gids_page(self, caller: str | None, after: str | None) -> dict[str, Any]:
        page = self.outbox.page(caller, after, max_count=GIDS_COUNT, max_bytes=1 << 62)
        return {"gids": [e.gid for e in page.entries], "more": page.more, "last": page.last}

    def fetch(self, caller: str | None, gids: Sequence[str], ancestors: bool = False,
              have: Sequence[str] = ()) -> list[dict[str, Any]]:
        if len(gids) > FETCH_MAX or len(have) > HAVE_MAX:
            raise TooLarge(f"at most {FETCH_MAX} gids and {HAVE_MAX} held gids per fetch")
        return self.outbox.fetch(caller, gids, ancestors, have)

    def keys_for(self, origin: str) -> dict[str, Any]:
        """The keys this node uses to verify ``origin`` (for peers that get its relays)."""
        return {"name": origin, "jwks": self.keys.jwks(origin)}

    def inbox(self, sender: str, txs: Sequence[Any], peer: Peer | None = None) -> list[dict[str, Any]]:
        """``peer``: the sender's record, if the caller read it already (to authenticate the request)."""
        if len(txs) > INBOX_MAX:
            raise TooLarge(f"at most {INBOX_MAX} transactions per inbox batch")
        with self._one_batch_of(sender):
            peer = peer if peer is not None and peer.name == sender else self.peers.get(sender)
            outcomes = self._inbox.receive_from(peer, txs, slot=self._slot)
        results = [_describe(o) for o in outcomes]
        if outcomes and all(o.status == REFUSED for o in outcomes):
            # Nothing taken: the answer is an error (a problem document), still with every reason.
            statuses = {o.error.status if o.error is not None else 422 for o in outcomes}
            raise BatchRefused(f"every transaction was refused; the first: {outcomes[0].reason}",
                               statuses.pop() if len(statuses) == 1 else 422, results)
        return results

    @contextlib.contextmanager
    def _one_batch_of(self, sender: str) -> Iterator[None]:
        with self._senders_lock:
            if sender in self._senders:
                raise Overloaded("a batch of yours is still being processed: send the next when it is answered")
            self._senders.add(sender)
        try:
            yield
        finally:
            with self._senders_lock:
                self._senders.discard(sender)

    @contextlib.contextmanager
    def _slot(self) -> Iterator[None]:
        if not self._inbox_slots.acquire(timeout=SLOT_WAIT):
            raise Overloaded("inbox busy: retry later", retry_after=1)
        try:
            yield
        finally:
            self._inbox_slots.release()

    def retry_pending(self) -> int:
        """Apply held transactions whose parents have arrived; returns how many were settled."""
        return self._inbox.retry_pending()


def _describe(outcome: Outcome) -> dict[str, Any]:
    out: dict[str, Any] = {"gid": outcome.gid, "status": outcome.status}
    if outcome.reason:
        out["reason"] = outcome.reason
    if outcome.missing:
        out["missing"] = outcome.missing
    return out
