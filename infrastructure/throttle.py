"""Coalesced, rate-limited calls per key: one peer's keys are fetched once at a time, and not again soon.

Key fetches are triggered by what others send (an unknown ``kid`` in a node
token, an unknown origin in a batch), so each one is a lever for an
attacker: without this, sixty anonymous requests naming a slow peer made
sixty blocking fetches and filled the worker pool. Here, for one key:

- at most one call runs at a time; a caller that ``wait``\\ s joins the one in
  flight (bounded by ``timeout``) instead of starting its own;
- after a call, the next starts no sooner than ``interval`` seconds later;
  callers in between get the result of what was learned so far (nothing new);
- ``soon`` never blocks: it starts the call on a small pool of background
  threads, for request paths that must not wait on a peer (an
  unauthenticated caller's).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor


class Throttle:
    def __init__(self, interval: float, *, timeout: float = 10.0, workers: int = 2,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.timeout = timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._running: dict[Hashable, threading.Event] = {}
        self._last: dict[Hashable, float] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fedsync-throttle")

    def wait(self, key: Hashable, call: Callable[[], object]) -> bool:
        """Run ``call`` now unless it ran lately; join it if it runs. True if this caller ran it."""
        with self._lock:
            running = self._running.get(key)
            if running is None and not self._due(key):
                return False
            if running is None:
                self._running[key] = threading.Event()
        if running is not None:
            running.wait(self.timeout)
            return False
        self._run(key, call)
        return True

    def soon(self, key: Hashable, call: Callable[[], object]) -> bool:
        """Start ``call`` in the background unless it runs or ran lately; never blocks."""
        with self._lock:
            if key in self._running or not self._due(key):
                return False
            self._running[key] = threading.Event()
        self._pool.submit(self._run, key, call)
        return True

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _due(self, key: Hashable) -> bool:
        last = self._last.get(key)
        return last is None or self._clock() - last >= self.interval

    def _run(self, key: Hashable, call: Callable[[], object]) -> None:
        try:
            call()
        finally:
            with self._lock:
                self._last[key] = self._clock()
                self._running.pop(key).set()
                if len(self._last) > 10_000:  # forget the oldest keys: bounded memory whatever is asked
                    for old in sorted(self._last, key=self._last.__getitem__)[:5_000]:
                        del self._last[old]
