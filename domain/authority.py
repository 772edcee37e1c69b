"""Who may change what: the rules judged from signed data alone.

Every rule reads only the transaction and the transactions it names (its
parents, the entity's creation), so every node reaches the same verdict in
any arrival order (docs/decisions/authority.md):

- The owner of an entity is the origin of its creating transaction; a
  creation's entity gid is bound to that origin (``owned_entity_gid``,
  checked in ``domain/transaction.py``), so no other node can claim it.
- ``author`` is ``<name>@<origin>`` (also checked there).
- Only the owner deletes (or restores) an entity, changes its scope, and
  grants or revokes shares of its items.
- Another node may change content only of entities whose scope (the
  narrowest scope among the parents it names) is ``DOMAIN``, ``NETWORK`` or
  ``PUBLIC``; its transaction keeps that scope and the parents' deletion
  state. ``OWNER`` and ``TEAM`` entities are changed by their owner only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.entity import Entity
from domain.errors import Forbidden
from domain.transaction import narrowest_scope

Lookup = Callable[[str], dict[str, Any]]
OWNER_ONLY_KINDS = frozenset({"item.deleted", "tag.deleted", "share.revoked"})
OPEN_SCOPES = ("DOMAIN", "NETWORK", "PUBLIC")  # another node may edit the content


def owner_of(entity: Entity, transaction: Lookup) -> str | None:
    """The origin of the entity's creation (read from the store for aggregates snapshotted before
    the creator was kept)."""
    if entity.creator is not None:
        return entity.creator
    first = [gid for gid, parents in entity.parents_of.items() if not parents]
    return transaction(first[0])["origin"] if first else None


def check_sharer(node: str, shared: Entity | None, transaction: Lookup) -> None:
    """Refuse a share (or its revocation) of ``shared`` made by any node but its owner."""
    owner = owner_of(shared, transaction) if shared is not None else None
    if shared is not None and owner is not None and node != owner:
        raise Forbidden(f"only {owner}, which created {shared.ENTITY} {shared.gid}, can share it; not {node}")


def check_change(entity: Entity, tx: dict[str, Any], transaction: Lookup) -> None:
    """Refuse a transaction on an existing entity that its origin has no right to make
    (after the entity's own checks: its parents must be known)."""
    entity.check_applicable(tx)
    owner = owner_of(entity, transaction)
    if owner is None or tx["origin"] == owner:
        return
    whose = f"{entity.ENTITY} {entity.gid} belongs to {owner}"
    if tx["kind"] in OWNER_ONLY_KINDS:
        raise Forbidden(f"{whose}: only its owner can make {tx['kind']}, not {tx['origin']}")
    marks = [entity.mark_of(parent, transaction) for parent in tx["parents"]]
    scope = narrowest_scope([s for s, _ in marks])
    if scope not in OPEN_SCOPES:
        raise Forbidden(f"{whose} and is {scope}: only its owner changes it, not {tx['origin']}")
    if tx["scope"] != scope:
        raise Forbidden(f"{whose}: only its owner changes its scope ({scope} -> {tx['scope']}), "
                        f"not {tx['origin']}")
    deleted = any(d for _, d in marks)
    if bool(tx["payload"].get("deleted", deleted)) != deleted:
        verb = "restores" if deleted else "deletes"
        raise Forbidden(f"{whose}: only its owner {verb} it, not {tx['origin']}")
