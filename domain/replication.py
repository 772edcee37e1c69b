"""Pull sessions, free of I/O (like h11): what a node asks a peer for next and what
it does with each answer. The driver (``infrastructure/sync.py``) does the HTTP
and the storing; a session only decides, so its rules are tested without a network.

- Cursor pull: ask the peer's outbox for what follows our cursor, page after
  page until ``more`` is false. Each page is applied in one commit together
  with the cursor it ends at (its ``last``), so a crash neither skips nor
  repeats a page. The next page can be asked for as soon as a page arrives,
  before it is applied. A peer that says ``more`` without moving the cursor,
  or moves it back to a cursor it gave before, is not asked again: the
  session is ``stalled`` and the driver treats the peer as failing (its
  breaker opens), since it would answer forever. After ``EMPTY_PAGES`` pages
  in a row that bring nothing new (no transaction, or only ones already
  stored or refused) the pull pauses until the next round: a peer may hide
  long runs, or a hostile one resend a page under fresh cursors, but each
  round stays bounded. At most ``MAX_PAGES`` pages per pull.
- Gap fill, when the peer does not know our cursor (or for anti-entropy):
  list the peer's gids from the start, fetch the ones we lack in chunks of
  ``GAP_FETCH``, then move the cursor to the last gids page's cursor.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from domain.receiving import PENDING, REFUSED, STORED, Outcome

MAX_PAGES = 100_000  # bound on one pull: 50 M transactions
EMPTY_PAGES = 100  # pages in a row that bring nothing new before a pull pauses until its next round
GAP_FETCH = 100  # gids per fetch while gap filling (a transaction may hold 1 MB of markdown)


@dataclass
class PullResult:
    peer: str
    pages: int = 0
    received: int = 0
    stored: int = 0
    pending: int = 0
    refused: int = 0
    gap_filled: bool = False

    def count(self, outcomes: Sequence[Outcome]) -> None:
        self.received += len(outcomes)
        for o in outcomes:
            if o.status == STORED:
                self.stored += 1
            elif o.status == PENDING:
                self.pending += 1
            elif o.status == REFUSED:
                self.refused += 1


@dataclass(frozen=True)
class PageRequest:
    """Ask the peer for the page after this cursor (None: from the start)."""

    after: str | None


@dataclass(frozen=True)
class ApplyPage:
    """Apply these transactions and move the pull cursor to ``cursor``, in one commit."""

    transactions: list[Any]
    cursor: str | None


@dataclass(frozen=True)
class FetchLacking:
    """Fetch these gids (in chunks), apply them, then move the pull cursor to ``cursor``."""

    chunks: list[list[str]] = field(default_factory=list)
    cursor: str | None = None


class _Paging:
    """Pages after a cursor until the peer says there are no more, the cursor stalls, or the bound."""

    def __init__(self, cursor: str | None, max_pages: int) -> None:
        self.cursor = cursor
        self.max_pages = max_pages
        self.pages = 0
        self.stalled = False  # the peer said ``more`` without moving the cursor past every earlier one
        self.paused = False  # EMPTY_PAGES pages in a row brought nothing new
        self._seen: set[str | None] = {cursor}
        self._idle = 0
        self._next: PageRequest | None = PageRequest(cursor)

    def next_request(self) -> PageRequest | None:
        """What to ask the peer for next; None when the session is over."""
        return self._next

    def _advance(self, page: Mapping[str, Any]) -> str | None:
        last = page.get("last") or self.cursor
        more = bool(page.get("more"))
        self.stalled = more and last in self._seen
        self._seen.add(last)
        self.pages += 1
        self.cursor = last
        going = more and not self.stalled and not self.paused and self.pages < self.max_pages
        self._next = PageRequest(last) if going else None
        return last

    def _count_idle(self, idle: bool) -> None:
        """One more page that brought nothing new (or not): ``EMPTY_PAGES`` in a row pause the session."""
        self._idle = self._idle + 1 if idle else 0
        if self._idle >= EMPTY_PAGES:
            self.paused, self._next = True, None


class PullSession(_Paging):
    """A cursor pull from one peer: ``next_request()``, then ``receive_page(page)`` for its answer."""

    def __init__(self, peer: str, cursor: str | None, *, max_pages: int = MAX_PAGES) -> None:
        super().__init__(cursor, max_pages)
        self.peer = peer
        self.result = PullResult(peer)

    def receive_page(self, page: Mapping[str, Any]) -> ApplyPage:
        last = self._advance(page)
        self.result.pages += 1
        return ApplyPage(page["transactions"], last)

    def applied(self, outcomes: Sequence[Outcome]) -> None:
        self.result.count(outcomes)
        self._count_idle(not any(o.status in (STORED, PENDING) for o in outcomes))


class GapFill(_Paging):
    """Compare gids with a peer from the start: ``next_request()``, then ``receive_gids(page, have)``."""

    def __init__(self, result: PullResult, *, max_pages: int = MAX_PAGES) -> None:
        super().__init__(None, max_pages)
        self.result = result
        result.gap_filled = True

    def receive_gids(self, page: Mapping[str, Any], have: Collection[str]) -> FetchLacking:
        """``have``: which of the page's gids are stored here already."""
        lacking = [g for g in page["gids"] if g not in have]
        chunks = [lacking[i:i + GAP_FETCH] for i in range(0, len(lacking), GAP_FETCH)]
        cursor = self._advance(page)
        self._count_idle(not lacking)
        return FetchLacking(chunks, cursor)

    def applied(self, outcomes: Sequence[Outcome]) -> None:
        self.result.count(outcomes)
