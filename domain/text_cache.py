"""A bounded cache of what was computed from recently seen large texts (references, rendered HTML)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class TextCache(Generic[T]):
    """What ``compute`` made of recently seen large texts (a bounded LRU).

    Keyed by length and ``hash()``: string hashing is keyed per process (SipHash with a random key), so a
    sender cannot make two texts collide, and no text is kept alive by the cache.
    """

    def __init__(self, size: int, compute: Callable[[str], T]) -> None:
        self._size = size
        self._compute = compute
        self._entries: OrderedDict[tuple[int, int], T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str) -> T:
        key = (len(text), hash(text))
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        found = self._compute(text)
        with self._lock:
            self._entries[key] = found
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return found
