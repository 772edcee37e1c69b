"""The Tag aggregate: a federated label that items refer to by gid.

Concurrent renames leave two heads; the current name is the one of the head
with the latest ``(created_at, gid)``, the same on every node.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate

from domain.entity import Entity, Recorded


class Tag(Entity):
    ENTITY = "tag"
    TOPIC = "fedsync:Tag"

    class Created(Recorded, Aggregate.Created):
        TOPIC = "fedsync:Tag.Created"
        tx: dict[str, Any]

    class Renamed(Recorded, Aggregate.Event):
        TOPIC = "fedsync:Tag.Renamed"
        tx: dict[str, Any]

    class Deleted(Recorded, Aggregate.Event):
        TOPIC = "fedsync:Tag.Deleted"
        tx: dict[str, Any]


Tag.EVENTS = {"tag.created": Tag.Created, "tag.renamed": Tag.Renamed, "tag.deleted": Tag.Deleted}
