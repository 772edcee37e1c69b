"""The Attachment aggregate: a file of an item ("bijlage"): its name, media type, size and the SHA-256 of its
bytes. The transaction never carries the bytes; they live in a content-addressed blob store and travel
apart, by hash, verified on arrival.

``attachment.added`` creates it, ``attachment.replaced`` points it at other bytes (or renames it),
``attachment.deleted`` ends it. Only the item's owner adds attachments to it, and only the attachment's
owner changes it (``domain/authority.py``). An attachment never moves to another item. Concurrent changes
resolve like tags: the head with the latest ``(created_at, gid)`` wins, the same on every node.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate

from domain.entity import Entity, Recorded
from domain.errors import EntityConflict


class Attachment(Entity):
    ENTITY = "attachment"
    TOPIC = "fedsync:Attachment"

    class Created(Recorded, Aggregate.Created):  # attachment.added
        TOPIC = "fedsync:Attachment.Added"
        tx: dict[str, Any]

    class Replaced(Recorded, Aggregate.Event):
        TOPIC = "fedsync:Attachment.Replaced"
        tx: dict[str, Any]

    class Deleted(Recorded, Aggregate.Event):
        TOPIC = "fedsync:Attachment.Deleted"
        tx: dict[str, Any]

    def check_applicable(self, tx: dict[str, Any]) -> None:
        super().check_applicable(tx)
        if tx["payload"]["item"] != self.state["item"]:
            raise EntityConflict(f"attachment {self.gid} cannot move to another item")


Attachment.EVENTS = {"attachment.added": Attachment.Created, "attachment.replaced": Attachment.Replaced,
                     "attachment.deleted": Attachment.Deleted}
