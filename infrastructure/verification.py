"""Verifying a received batch's signatures on every core.

``receiving.check`` validates and canonicalises a whole batch first, then
hands every (transaction, signing input) to the ``verify_all`` port at
once, before the write lock is taken. ``ParallelVerify`` is that port: it
splits the list into consecutive parts, one per worker, and joins the
answers in the list's order, so a page's order and its one commit are
unchanged.

Threads are enough: the ``cryptography`` package releases the GIL while it
verifies (measured on 2 cores: 20,000 Ed25519 verifications ran 11,209/s
in one thread and 21,429/s in two), so no key material has to be shipped
to other processes. Only the verifications run in parallel: Python work
beside them (validation, canonical JSON) would hold the GIL and make the
verifying threads queue for it, which measured slower than one thread.
A pull's large pages are validated and verified in other processes while
the page before is stored (``check_pool.py``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from domain import receiving
from domain.errors import DomainError

MIN_PART = 64  # transactions: a shorter part costs more to hand over than it saves


def verify_workers(setting: int) -> int:
    """The threads that verify received batches: the setting, or one per core when it is 0."""
    return setting if setting > 0 else os.cpu_count() or 1


class ParallelVerify:
    """``receiving.one_by_one(verify)`` over parts of a list on ``workers`` threads (the caller's included)."""

    def __init__(self, verify: receiving.Verify, workers: int) -> None:
        self.one_by_one = receiving.one_by_one(verify)
        self.workers = max(1, workers)
        self._pool = ThreadPoolExecutor(self.workers - 1, thread_name_prefix="fedsync-verify") \
            if self.workers > 1 else None

    def __call__(self, signed: Sequence[tuple[receiving.Transaction, bytes]]) -> list[DomainError | None]:
        parts = min(self.workers, len(signed) // MIN_PART)
        if self._pool is None or parts < 2:
            return self.one_by_one(signed)
        size = -(-len(signed) // parts)
        others = [self._pool.submit(self.one_by_one, signed[start:start + size])
                  for start in range(size, len(signed), size)]
        errors = self.one_by_one(signed[:size])
        for part in others:
            errors.extend(part.result())
        return errors

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
