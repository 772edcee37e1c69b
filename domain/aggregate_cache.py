"""Which cached aggregates may lag the store: judged once per group commit, not read per command.

The application keeps recently used aggregates in the library's cache and,
by default, fast-forwards each one it takes: a read of the events stored
for it since (a read transaction per command, while the group commit's
leader holds the write lock). Another process on the same database (a
second ``serve`` worker, ``fedsync sync``) may have stored them; this
process's own saves change the cached aggregates in place.

``CacheWatch`` knows a ``position`` up to which every cached aggregate
holds every stored event. Events are numbered in commit order on both
stores (each insert holds the events table's lock until it commits: every
lower number is settled), so what the cache may lack is exactly the events
numbered after ``position``. Before each group, the leader reads them
(``refresh``: one query, usually answered with nothing): their aggregates
are fast-forwarded when next taken, every other cached aggregate is taken
as it is. A save of this process that follows ``position`` directly moves
it on. Past ``MAX_BEHIND`` events (a long pause, a busy other process) the
cache is emptied instead and ``position`` starts again from the newest
event. Everything runs under the application's write lock, as every change
of the cache does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from eventsourcing.application import Cache, LRUCache, Repository

MAX_BEHIND = 1000  # events stored by others since ``position`` past which the whole cache is dropped


class CacheWatch:
    """The application's aggregates, taken from the library's repository and its cache (see the module)."""

    def __init__(self, repository: Repository[Any], recorder: Any) -> None:
        self._repository = repository
        self._recorder = recorder  # the application's: max_notification_id, and TransactionIndex.stored_after
        self.position: int | None = None  # None: not known yet (each aggregate is fast-forwarded)
        self._lagging: set[UUID] = set()
        self._own: list[tuple[int, int]] = []  # events this process stored after ``position``, not following it

    def refresh(self) -> None:
        """Read what was stored since ``position`` (under the write lock, before a group's commands)."""
        if self.position is not None:
            after = self._recorder.stored_after(self.position, MAX_BEHIND + 1)
            if len(after) <= MAX_BEHIND:
                own = self._own  # the cache holds these already (changed in place): no read for them
                self._lagging.update(aggregate_id for seq, aggregate_id in after
                                     if not any(first <= seq <= last for first, last in own))
                self.position = after[-1][0] if after else self.position
                self._own = [(first, last) for first, last in own if last > self.position]
                return
        # first use, or too far behind: drop the cache; nothing cached from here on lags what is stored
        cache = self._repository.cache
        if cache is not None:
            self._repository.cache = LRUCache(cache.maxsize) if isinstance(cache, LRUCache) else Cache()
        self._lagging.clear()
        self._own = []
        self.position = self._recorder.max_notification_id() or 0

    def get(self, aggregate_id: UUID, *, copy: bool, current: bool = False) -> Any:
        """The aggregate, from the cache as it is if ``current`` is asked for and it is known to be (a writer's,
        after ``refresh``, not copied), else fast-forwarded (or read) by the repository."""
        cache = self._repository.cache
        if current and not copy and cache is not None and self.position is not None \
                and aggregate_id not in self._lagging:
            with contextlib.suppress(KeyError):
                return cache.get(aggregate_id)
        aggregate = self._repository.get(aggregate_id, deepcopy_from_cache=copy)
        self._lagging.discard(aggregate_id)  # fast-forwarded, or read whole
        return aggregate

    def cached_head(self, aggregate_id: UUID, gid: str) -> dict[str, Any] | None:
        """The state of head ``gid`` of the aggregate as the cache holds it now (None: not cached, or no such head),
        without the write lock: a transaction's state never changes, and the leader's change of an aggregate
        in place replaces entries of its ``head_states``, each step atomic under the interpreter lock."""
        cache = self._repository.cache
        try:
            aggregate = cache.get(aggregate_id) if cache is not None else None
        except KeyError:
            return None
        return None if aggregate is None else aggregate.head_states.get(gid)

    def forget(self, ids: Iterable[UUID]) -> None:
        """Evict these aggregates (a failed save changed them in place)."""
        if self._repository.cache is not None:
            for aggregate_id in ids:
                with contextlib.suppress(KeyError):
                    self._repository.cache.get(aggregate_id, evict=True)

    def saved(self, first: int, last: int) -> None:
        """This process stored events ``first``..``last`` (their aggregates are the cached ones, changed in
        place): ``position`` moves on if nothing of another process's lies between; else the next ``refresh``
        reads past them without taking their aggregates for lagging (with two serving processes writing in
        turn, each process's own edits were otherwise read back from the store before their next edit)."""
        if self.position is None:
            return
        if first == self.position + 1:
            self.position = last
        else:
            self._own.append((first, last))
