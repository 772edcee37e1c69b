"""The Item aggregate: a markdown document with a history of signed transactions.

An item's transactions form a parent DAG; concurrent edits on different
nodes leave it with several heads (a conflict that a merge resolves). The
document state at each head is the transaction's payload: ``title``,
``markdown``, ``tags`` (tag gids), ``forked_from`` (item gids), ``deleted``.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate

from domain.entity import Entity, Recorded
from domain.errors import EntityConflict, StaleHead


class Item(Entity):
    ENTITY = "item"
    TOPIC = "fedsync:Item"

    class Created(Recorded, Aggregate.Created):
        TOPIC = "fedsync:Item.Created"
        tx: dict[str, Any]

    class Forked(Recorded, Aggregate.Created):
        TOPIC = "fedsync:Item.Forked"
        tx: dict[str, Any]

    class Edited(Recorded, Aggregate.Event):
        TOPIC = "fedsync:Item.Edited"
        tx: dict[str, Any]

    class Deleted(Recorded, Aggregate.Event):
        TOPIC = "fedsync:Item.Deleted"
        tx: dict[str, Any]

    class Restored(Recorded, Aggregate.Event):
        TOPIC = "fedsync:Item.Restored"
        tx: dict[str, Any]

    class Merged(Recorded, Aggregate.Event):
        TOPIC = "fedsync:Item.Merged"
        tx: dict[str, Any]

    @property
    def deleted(self) -> bool:
        return bool(self.state["deleted"])

    def check_can_edit(self, parent: str) -> None:
        """A local change must be based on a current head and not on a tombstone."""
        self.check_is_head(parent)
        if self.head_states[parent]["payload"]["deleted"]:
            raise EntityConflict(f"item {self.gid} is deleted at {parent}")

    def check_can_restore(self, parent: str) -> None:
        """A restore is based on a current head that is a tombstone."""
        self.check_is_head(parent)
        if not self.head_states[parent]["payload"]["deleted"]:
            raise EntityConflict(f"item {self.gid} is not deleted at {parent}: there is nothing to restore")

    def check_can_merge(self, heads: list[str]) -> None:
        if len(set(heads)) < 2:
            raise EntityConflict("a merge needs two or more distinct heads")
        stale = [h for h in heads if h not in self.head_states]
        if stale:
            raise StaleHead(f"not current heads of item {self.gid}: {', '.join(stale)}", heads=self.heads)


Item.EVENTS = {
    "item.created": Item.Created,
    "item.forked": Item.Forked,
    "item.edited": Item.Edited,
    "item.deleted": Item.Deleted,
    "item.restored": Item.Restored,
    "item.merged": Item.Merged,
}
