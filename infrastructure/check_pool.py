"""Checking a pulled page in other processes while this one stores the page before it.

A pull fetches the next page while it applies the current one (``sync.py``).
What receiving costs in Python is about one third checks that need neither
the store nor the clock (validate, canonicalise, verify the signature:
``receiving.verified``) and two thirds the save; and Python runs one thread
at a time. Threads verify signatures in parallel (``verification.py``: the
``cryptography`` package releases the GIL), but not the validation beside
them. So a large pulled page is checked in worker processes as soon as it
has arrived, with a snapshot of the keys its origins are verified with now
(``KeySnapshot``), while this process stores the page before it; the save
then checks only each transaction's ``created_at`` and whatever the workers
did not accept (``receiving.check``'s ``prechecked``).

A worker's answer only ever spares work: what it refuses, or cannot verify
with the snapshot (a key it could not learn before the page was handed
over), is checked again here on the ordinary path, which learns and reloads
keys and says why it refuses. A page's order and its one commit are the
save's and do not change. Workers are spawned (not forked: this process has
threads) on the first large page. Pages are handed to them while they
start (a spawned worker imports the program: 0.3-1 s, several pages of a
catch-up); a page whose answer is not there when the save wants it, while
they are still starting, is checked here instead of waited for. A worker
that dies only makes pages be checked here until the pool is
started again (after three broken pools, for good: say, workers that
cannot import the program that started them).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from domain import receiving
from domain.errors import DomainError
from infrastructure.key_snapshot import KeySnapshot

MIN_PAGE = 200  # transactions: a smaller page costs more to hand over than it saves
MAX_BREAKS = 3  # pools whose workers died before this process stops starting them
PARENT_CHECK = 0.5  # seconds between a worker's checks that the process that started it still runs
log = logging.getLogger("fedsync.check_pool")


class Prechecked:
    """The workers' answers for a batch of ``size`` (taken from ``source``): each transaction validated and
    verified, or None."""

    def __init__(self, source: Sequence[Any], size: int, parts: list[Future[list[receiving.Transaction | None]]],
                 broken: Callable[[], None], count: Callable[[int], None],
                 started: Sequence[Future[bool]] = ()) -> None:
        self.source = source
        self.size = size
        self._parts = parts
        self._broken = broken
        self._count = count
        self._started = started  # the futures that say the workers are up (submitted while they were starting)

    def result(self) -> list[receiving.Transaction | None]:
        """The answers; waited for once the workers are up, else (still starting, the answer not here yet) all
        None at once: checking the batch here is sooner than waiting for a process to start."""
        if not all(part.done() for part in self._parts) and not all(up.done() for up in self._started):
            for part in self._parts:
                part.cancel()  # those the workers have not taken yet
            return [None] * self.size
        answers: list[receiving.Transaction | None] = []
        try:
            for part in self._parts:
                answers.extend(part.result())
        except Exception as error:  # noqa: BLE001 — a lost answer only means checking the batch here
            if isinstance(error, BrokenProcessPool):
                self._broken()
            log.warning("a check worker gave no answer (%s): the page is checked in this process", error)
            return [None] * self.size
        self._count(sum(answer is not None for answer in answers))
        return answers


class CheckPool:
    """``workers`` processes (0: none, every batch is checked in the caller's process)."""

    def __init__(self, workers: int, snapshot: Callable[[Iterable[str]], KeySnapshot]) -> None:
        self.workers = max(0, workers)
        self.snapshot = snapshot  # KeyDirectory.snapshot
        self._pool: ProcessPoolExecutor | None = None
        self._started: list[Future[bool]] = []
        self._lock = threading.Lock()
        self.answered = 0  # transactions the workers validated and verified (for tests and /metrics)
        self._breaks = 0

    def _count(self, answered: int) -> None:
        with self._lock:
            self.answered += answered

    def takes(self, size: int) -> bool:
        """Whether a batch of ``size`` would be checked in the workers (the caller's process checks it else)."""
        return self.workers > 0 and size >= MIN_PAGE

    def submit(self, batch: Sequence[Any], source: Sequence[Any] | None = None) -> Prechecked | None:
        """Start checking ``batch`` in the workers (queued while they start); None when it is checked in the
        caller's process (a small batch, no workers, a broken pool). ``source``: what the answer is for."""
        if not self.takes(len(batch)):
            return None
        pool, started = self._start()
        if pool is None:
            return None
        if any(future.done() and future.exception() for future in started):
            self._restart(pool)  # the workers died starting (their program cannot be imported, say)
            return None
        keys = self.snapshot({tx["origin"] for tx in batch
                              if isinstance(tx, dict) and isinstance(tx.get("origin"), str)})
        size = -(-len(batch) // self.workers)
        try:
            parts = [pool.submit(_verified, list(batch[start:start + size]), keys)
                     for start in range(0, len(batch), size)]
        except (BrokenProcessPool, RuntimeError):  # shut down, or a worker died
            self._restart(pool)
            return None
        return Prechecked(batch if source is None else source, len(batch), parts, lambda: self._restart(pool),
                          self._count, started)

    def warm(self, timeout: float) -> bool:
        """Start the workers now and wait up to ``timeout`` seconds for them: True when they are up."""
        pool, started = self._start()
        if pool is None:
            return False
        done, _ = wait(started, timeout)
        return len(done) == len(started)

    def _start(self) -> tuple[ProcessPoolExecutor | None, list[Future[bool]]]:
        """The pool, started now if it is not, and the futures that say its workers are up."""
        with self._lock:
            if self._pool is None and self.workers > 0:
                self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_watch_parent, initargs=(os.getpid(),))
                self._started = [self._pool.submit(_started) for _ in range(self.workers)]
            return self._pool, self._started

    def _restart(self, broken: ProcessPoolExecutor) -> None:
        """Start again with the next large batch; after ``MAX_BREAKS`` broken pools, check every batch here."""
        with self._lock:
            if self._pool is broken:
                self._pool = None
                self._breaks += 1
                if self._breaks >= MAX_BREAKS:
                    log.warning("the check workers broke %d times: pages are checked in this process from now on",
                                self._breaks)
                    self.workers = 0
        broken.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            self.workers = 0
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _started() -> bool:
    return True


def _watch_parent(parent: int) -> None:
    """In a worker: exit when the process that started it is gone (killed, say), instead of waiting for
    work forever (a worker does not notice on its own)."""
    def watch() -> None:
        while os.getppid() == parent:  # bounded by the parent's life
            time.sleep(PARENT_CHECK)
        os._exit(0)

    threading.Thread(target=watch, name="fedsync-check-parent", daemon=True).start()


def _verified(batch: list[Any], keys: KeySnapshot) -> list[receiving.Transaction | None]:
    """In a worker: each transaction validated and verified with ``keys``, or None (check it at home)."""
    return [None if isinstance(checked, DomainError) else checked
            for checked in receiving.verified(batch, verify_all=receiving.one_by_one(keys.verify))]
