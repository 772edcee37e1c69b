"""Which aggregates a save snapshots.

A snapshot is taken from the aggregate in memory, once per save, of each aggregate whose events in the save pass
a multiple of its interval and end at its version (a save of one chunk of a page's events leaves it for the chunk
with its last event). The library would rebuild it from the store for each multiple while the write lock is
held: a long history's length every ``interval`` events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def due_for_snapshot(events: Iterable[Any], aggregates: Mapping[Any, Any], intervals: Mapping[type, int]) -> list[Any]:
    """The aggregates of these saved events (``aggregates`` by id) that are due a snapshot."""
    spans: dict[Any, tuple[int, int]] = {}  # the first and last version of its events in this save
    for event in events:
        first = spans.get(event.originator_id, (event.originator_version, 0))[0]
        spans[event.originator_id] = (first, event.originator_version)
    found = []
    for originator_id, (first, last) in spans.items():
        aggregate = aggregates.get(originator_id)
        interval = intervals.get(type(aggregate)) if aggregate is not None else None
        if interval is not None and aggregate.version == last and last // interval != (first - 1) // interval:
            found.append(aggregate)
    return found
