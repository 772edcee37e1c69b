"""The common shape of federated aggregates: a DAG of signed transactions.

Items, tags and shares are event-sourced aggregates whose events ARE the
federated transactions (each event carries the validated, signed wire dict).
An aggregate keeps its parent DAG (every transaction gid with its parents),
its heads (transactions no other transaction names as parent) and the
document state at each head. Rules:

- a transaction applies only if all its parents are already part of the
  aggregate; the first one must be a creation, later ones must not be;
- a transaction whose parents are not the current heads is not an error:
  it makes a second head (a conflict); only local edits insist on a head;
- the current state is the state of the head with the latest
  ``(created_at, gid)``, so every node picks the same one; but the entity
  is only as visible as its most private head and deleted while any head
  is (``effective``): a head that another node post-dates cannot undo what
  the owner did on another branch (docs/decisions/authority.md);
- ``apply`` bodies only mutate state: they run again on every replay, so
  every check lives in ``check_*`` methods called before the event is
  triggered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.errors import EntityConflict, StaleHead, UnknownParents
from domain.transaction import CREATION_KINDS, narrowest_scope


def head_summary(tx: dict[str, Any]) -> dict[str, Any]:
    """What an aggregate keeps of a transaction that is a head."""
    return {
        "gid": tx["gid"],
        "kind": tx["kind"],
        "created_at": tx["created_at"],
        "author": tx["author"],
        "origin": tx["origin"],
        "scope": tx["scope"],
        "checksum": tx["checksum"],
        "payload": tx["payload"],
    }


def mark(tx: dict[str, Any]) -> list[Any]:
    """A transaction's scope, whether it leaves the entity deleted (a share: revoked), and whether
    its owner restricted edits to itself."""
    payload = tx["payload"]
    return [tx["scope"], bool(payload.get("deleted", payload.get("revoked", False))),
            bool(payload.get("owner_edits_only", False))]


def effective(heads: Iterable[dict[str, Any]]) -> tuple[str, bool]:
    """An entity's scope and deletion state over all its heads: the narrowest scope, and deleted
    (a share: revoked) if any head is. What a merge of the heads by another node must keep, too."""
    marks = [mark(head) for head in heads]
    return narrowest_scope(m[0] for m in marks), any(m[1] for m in marks)


def latest(heads: list[dict[str, Any]]) -> dict[str, Any]:
    """The head whose state is shown as current: latest created_at, then larger gid."""
    return max(heads, key=lambda h: (h["created_at"], h["gid"]))


class Entity(Aggregate):
    """Base class of Item, Tag and Share (not stored itself)."""

    # Plain class attributes, not annotations: the library turns annotated
    # aggregate classes into dataclasses, which would replace __init__.
    ENTITY = ""
    EVENTS = {}  # kind -> event class, set by each subclass

    def __init__(self) -> None:
        # The creation event's apply() (the _Recorded mixin) adds the first transaction.
        self.parents_of: dict[str, list[str]] = {}
        self.head_states: dict[str, dict[str, Any]] = {}
        # gid -> [scope, deleted, owner edits only]: what authority judges (JSON: lists; snapshots taken
        # before the third was kept hold two)
        self.marks: dict[str, list[Any]] = {}

    # --- state ---------------------------------------------------------
    @property
    def gid(self) -> str:
        return str(self.id)

    @property
    def heads(self) -> list[str]:
        return sorted(self.head_states)

    @property
    def current(self) -> dict[str, Any]:
        return latest(list(self.head_states.values()))

    @property
    def state(self) -> dict[str, Any]:
        return self.current["payload"]

    @property
    def creator(self) -> str | None:
        """The node that created the entity (None for an aggregate snapshotted before this was kept)."""
        return getattr(self, "_creator", None)

    def mark_of(self, gid: str, transaction: Callable[[str], dict[str, Any]]) -> list[Any]:
        """The scope and deletion state at one of the entity's transactions (read from the store
        for aggregates snapshotted before marks were kept)."""
        marks = getattr(self, "marks", {})
        return marks[gid] if gid in marks else mark(transaction(gid))

    def _add(self, tx: dict[str, Any]) -> None:
        if not tx["parents"]:
            self._creator = tx["origin"]
        if hasattr(self, "marks"):
            self.marks[tx["gid"]] = mark(tx)
        self.parents_of[tx["gid"]] = list(tx["parents"])
        for parent in tx["parents"]:
            self.head_states.pop(parent, None)
        self.head_states[tx["gid"]] = head_summary(tx)

    # --- checks (command side) ----------------------------------------
    def check_applicable(self, tx: dict[str, Any]) -> None:
        if tx["entity"] != self.ENTITY or tx["entity_gid"] != self.gid:
            raise EntityConflict(f"transaction {tx['gid']} is not a transaction of {self.ENTITY} {self.gid}")
        if tx["kind"] in CREATION_KINDS:
            raise EntityConflict(f"{self.ENTITY} {self.gid} already exists: {tx['kind']} refused")
        missing = [p for p in tx["parents"] if p not in self.parents_of]
        if missing:
            raise UnknownParents(f"unknown parent transaction(s) of {tx['gid']}: {', '.join(missing)}", missing)

    def check_is_head(self, gid: str) -> None:
        if gid not in self.head_states:
            raise StaleHead(f"{gid} is not a current head of {self.ENTITY} {self.gid}", heads=self.heads)

    # --- the one command: record a (validated, verified) transaction --------
    def record(self, tx: dict[str, Any]) -> None:
        self.check_applicable(tx)
        self.trigger_event(self.EVENTS[tx["kind"]], tx=tx)

    @classmethod
    def create(cls, tx: dict[str, Any]):
        if tx["entity"] != cls.ENTITY or tx["kind"] not in CREATION_KINDS:
            raise EntityConflict(f"{tx['kind']} cannot create a {cls.ENTITY}")
        if tx["parents"]:
            raise UnknownParents(f"unknown {cls.ENTITY} {tx['entity_gid']}", list(tx["parents"]))
        return cls._create(cls.EVENTS[tx["kind"]], id=_uuid(tx["entity_gid"]), tx=tx)


def _uuid(gid: str) -> UUID:
    return UUID(gid)


class Recorded:
    """Event body shared by every transaction event: record it in the DAG."""

    tx: dict[str, Any]

    def apply(self, aggregate: Entity) -> None:  # type: ignore[override]
        aggregate._add(self.tx)
