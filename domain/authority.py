"""Who may change what: the rules judged from signed data alone.

- The owner of an entity is the origin of its creating transaction.
- Only the node that created an item shares it (grants and revokes its
  shares): another peer's share would otherwise open an OWNER item to
  whoever it names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.entity import Entity
from domain.errors import Forbidden


def owner_of(entity: Entity, transaction: Callable[[str], dict[str, Any]]) -> str | None:
    """The origin of the entity's creation (read from the store for aggregates snapshotted before
    the creator was kept)."""
    if entity.creator is not None:
        return entity.creator
    first = [gid for gid, parents in entity.parents_of.items() if not parents]
    return transaction(first[0])["origin"] if first else None


def check_sharer(node: str, shared: Entity | None, transaction: Callable[[str], dict[str, Any]]) -> None:
    """Refuse a share (or its revocation) of ``shared`` made by any node but its owner."""
    owner = owner_of(shared, transaction) if shared is not None else None
    if shared is not None and owner is not None and node != owner:
        raise Forbidden(f"only {owner}, which created {shared.ENTITY} {shared.gid}, can share it; not {node}")
