"""The Share aggregate: access to one item granted to one peer node.

``share.granted`` creates the share (by the item's owner),
``share.requested`` a request that the owner share the item with a third
node (by a node holding an edit share, which it names as ``grant``; the
owner answers with a grant of its own, or not), ``share.changed`` changes
its permission or team, ``share.revoked`` ends it (or withdraws a request); granting again after a
revoke is a new share. A share never changes its item or peer, and a
revoked share is not changed back. Concurrent changes resolve like tags: the head with the latest
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

    class Requested(Recorded, Aggregate.Created):  # share.requested
        TOPIC = "fedsync:Share.Requested"
        tx: dict[str, Any]

    class Changed(Recorded, Aggregate.Event):
        TOPIC = "fedsync:Share.Changed"
        tx: dict[str, Any]

    class Revoked(Recorded, Aggregate.Event):
        TOPIC = "fedsync:Share.Revoked"
        tx: dict[str, Any]

    def check_applicable(self, tx: dict[str, Any]) -> None:
        super().check_applicable(tx)
        payload, state = tx["payload"], self.state
        if payload["item"] != state["item"] or payload["peer"] != state["peer"]:
            raise EntityConflict(f"share {self.gid} cannot change its item or peer")
        if tx["kind"] == "share.changed" and (payload["revoked"] or "grant" in state):
            raise EntityConflict(f"share.changed cannot revoke share {self.gid} or change a request")


Share.EVENTS = {"share.granted": Share.Created, "share.requested": Share.Requested, "share.changed": Share.Changed,
                "share.revoked": Share.Revoked}
