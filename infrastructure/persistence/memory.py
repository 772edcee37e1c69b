"""The library's in-memory store with the gid index: for tests of the domain's rules.

Nothing here survives the process. Held transactions and the pull cursor
of ``CommitExtras`` are kept in plain attributes, so a test can see them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, IntegrityError, StoredEvent
from eventsourcing.popo import POPOApplicationRecorder, POPOFactory

from domain.commit import CommitExtras, HeldTransaction, IndexEntry, PullCursor


def memory_env() -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "infrastructure.persistence.memory:MemoryFactory"}


class MemoryRecorder(POPOApplicationRecorder):
    def __init__(self) -> None:
        super().__init__()
        self.index: dict[str, IndexEntry] = {}
        self.held: dict[str, HeldTransaction] = {}
        self.pull_cursors: dict[str, PullCursor] = {}

    def _update_table(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        extras: CommitExtras = kwargs.get("extras") or CommitExtras()
        taken = [e.gid for e in extras.index if e.gid in self.index]
        if taken:
            raise IntegrityError(f"transactions already stored: {', '.join(taken)}")
        ids = super()._update_table(stored_events)
        self.index.update({e.gid: e for e in extras.index})
        self.held.update({h.gid: h for h in extras.held})
        for gid in extras.settled:
            self.held.pop(gid, None)
        if extras.pull_cursor is not None:
            self.pull_cursors[extras.pull_cursor.peer] = extras.pull_cursor
        return ids

    def existing(self, ids: Sequence[UUID]) -> set[UUID]:
        with self._database_lock:
            return {i for i in ids if self._stored_events_index.get(str(i))}

    def stored_after(self, position: int, limit: int) -> list[tuple[int, UUID]]:
        return [(n.id, n.originator_id) for n in self.select_notifications(position + 1, limit)]

    def locate(self, gids: Sequence[str]) -> list[dict[str, Any]]:
        with self._database_lock:
            rows = []
            for gid in gids:
                entry = self.index.get(gid)
                if entry is None:
                    continue
                position = self._stored_events_index[str(entry.originator_id)][entry.originator_version]
                event = self._stored_events[position]
                rows.append({"gid": gid, "seq": position + 1, "originator_id": event.originator_id,
                             "originator_version": event.originator_version, "topic": event.topic,
                             "state": event.state})
            return rows


class MemoryFactory(POPOFactory):
    def application_recorder(self) -> ApplicationRecorder:
        return MemoryRecorder()
