"""The Share aggregate: access to one item granted to one peer node.

``share.granted`` creates the share, ``share.revoked`` ends it; granting
again (or another permission) is a new share. A share never changes its
item or peer. Concurrent changes resolve like tags: the head with the latest
``(created_at, gid)`` wins, the same on every node.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate

from domain.entity import Entity, Recorded
from domain.errors import EntityConflict


class Share(Entity):
    ENTITY = "share"
    TOPIC = "fedsync:Share"

    class Created(Recorded, Aggregate.Created):  # share.granted
        TOPIC = "fedsync:Share.Granted"
        tx: dict[str, Any]

    class Revoked(Recorded, Aggregate.Event):
        TOPIC = "fedsync:Share.Revoked"
        tx: dict[str, Any]

    def check_applicable(self, tx: dict[str, Any]) -> None:
        super().check_applicable(tx)
        payload, state = tx["payload"], self.state
        if payload["item"] != state["item"] or payload["peer"] != state["peer"]:
            raise EntityConflict(f"share {self.gid} cannot change its item or peer")


Share.EVENTS = {"share.granted": Share.Created, "share.revoked": Share.Revoked}
