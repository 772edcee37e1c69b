"""The recent refusals of what peers sent, with their reasons, for the admin (``GET /admin/refusals`` and the
federation page).

A refusal is answered to its sender and counted for ``/metrics``; without this record an admin who asks "why
does this item not arrive?" has only the sender's side. It is a ring in this process's memory:

- at most ``KEPT`` refusals, the oldest dropped first, each field cut to a few hundred characters, so a
  hostile peer that sends nothing but refused transactions costs a fixed few hundred kilobytes;
- kept since the process started (``fedsync serve``'s own pushes received and pulls made; a ``fedsync peer
  sync`` run from the command line records in its own process): a restart empties it. What happened before
  is in the sender's answers and the logs; a table would survive restarts but be one more thing a hostile
  peer writes to the store (see docs/decisions/web-pages.md).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from domain.receiving import REFUSED, Outcome
from domain.transaction import utc_now

KEPT = 500
REASON_CHARS = 500
FIELD_CHARS = 200


@dataclass(frozen=True)
class Refusal:
    at: str
    sender: str
    gid: str
    entity: str
    kind: str
    type: str  # the refusal's problem type (invalid-transaction, forbidden, equivocation, ...)
    status: int
    reason: str


class RefusalLog:
    """The last ``kept`` refusals of this process, newest first when read; safe across threads."""

    def __init__(self, kept: int = KEPT, clock: Callable[[], str] = utc_now) -> None:
        self.kept = kept
        self.since = clock()
        self.total = 0  # refusals recorded since the process started, also those dropped from the ring
        self._clock = clock
        self._ring: deque[Refusal] = deque(maxlen=kept)
        self._lock = threading.Lock()

    def record(self, sender: str, txs: Sequence[Any], outcomes: Iterable[Outcome]) -> None:
        """Keep the refused ones of a batch's outcomes (one per transaction of ``txs``, in order)."""
        now = self._clock()
        refused = [_refusal(now, sender, tx, outcome) for tx, outcome in zip(txs, outcomes, strict=False)
                   if outcome.status == REFUSED]
        if refused:
            with self._lock:
                self._ring.extend(refused)
                self.total += len(refused)

    def recent(self) -> list[Refusal]:
        with self._lock:
            return list(reversed(self._ring))


def _refusal(now: str, sender: str, tx: Any, outcome: Outcome) -> Refusal:
    fields = tx if isinstance(tx, dict) else {}
    error = outcome.error
    return Refusal(at=now, sender=_cut(sender), gid=_cut(outcome.gid or fields.get("gid")),
                   entity=_cut(fields.get("entity")), kind=_cut(fields.get("kind")),
                   type=error.type if error else "refused", status=error.status if error else 422,
                   reason=_cut(outcome.reason, REASON_CHARS))


def _cut(value: Any, chars: int = FIELD_CHARS) -> str:
    """A field as the sender gave it, cut short in the middle (a reason quotes what was sent, then says why):
    it is whatever a peer chose to send."""
    text = value if isinstance(value, str) else "" if value is None else f"({type(value).__name__})"
    half = (chars - 1) // 2
    return text if len(text) <= chars else f"{text[:half]}…{text[-half:]}"
