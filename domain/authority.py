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
  ``PUBLIC`` and whose owner did not restrict edits to itself
  (``owner_edits_only`` in a named parent); its transaction keeps that
  scope, the parents' deletion state and that restriction. ``OWNER`` and
  ``TEAM`` items (and restricted ones) are changed by their owner, and by a
  node holding an ``edit`` share: its edit names the share transaction it
  relies on (``payload.grant``), judged alone (``check_grant``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.entity import Entity
from domain.errors import Forbidden, TransactionNotFound, UnknownParents
from domain.transaction import narrowest_scope

Lookup = Callable[[str], dict[str, Any]]
OWNER_ONLY_KINDS = frozenset({"item.deleted", "item.restored", "tag.deleted", "share.changed", "share.revoked",
                              "attachment.replaced", "attachment.deleted"})
OPEN_SCOPES = ("DOMAIN", "NETWORK", "PUBLIC")  # another node may edit the content
GRANT_KINDS = frozenset({"share.granted", "share.changed"})  # a share's state as its owner set it (not a request)


def owner_of(entity: Entity, transaction: Lookup) -> str | None:
    """The origin of the entity's creation (read from the store for aggregates snapshotted before
    the creator was kept)."""
    if entity.creator is not None:
        return entity.creator
    first = [gid for gid, parents in entity.parents_of.items() if not parents]
    return transaction(first[0])["origin"] if first else None


def check_on_item(tx: dict[str, Any], entity: Entity | None, item_of: Callable[[str], Entity | None],
                  transaction: Lookup) -> None:
    """A share's or attachment's rules, which look at the item it is about (``item_of``: the aggregate, if
    stored; ``entity``: the share or attachment itself, if stored)."""
    if tx["entity"] == "share":
        check_share(tx, entity or item_of(tx["payload"]["item"]), transaction)
    else:
        check_attachment(tx, item_of(tx["payload"]["item"]), transaction)


def check_attachment(tx: dict[str, Any], item: Entity | None, transaction: Lookup) -> None:
    """An attachment is added by its item's owner only (unknown item: it may arrive later; the read side
    counts an attachment only when its item's owner made it, as it counts shares)."""
    owner = owner_of(item, transaction) if item is not None else None
    if tx["kind"] == "attachment.added" and owner is not None and tx["origin"] != owner:
        raise Forbidden(f"only {owner}, which created item {item.gid if item else ''}, adds attachments to it; "
                        f"not {tx['origin']}")


def check_share(tx: dict[str, Any], shared: Entity | None, transaction: Lookup) -> None:
    """A share transaction: a request names its grant; anything else on a share (or on a request: a
    withdrawal) is made by the owner of ``shared`` (the item, or the share itself when it exists)."""
    if tx["kind"] == "share.requested":
        check_request(tx, shared, transaction)
    else:
        check_sharer(tx["origin"], shared, transaction)


def check_request(tx: dict[str, Any], item: Entity | None, transaction: Lookup) -> None:
    """A share request must name a live edit share of the item that its owner made for the requester."""
    granted = _named_grant(tx, tx["payload"]["grant"], transaction)
    owner = owner_of(item, transaction) if item is not None else granted["origin"]
    check_grant(tx["payload"]["item"], owner, tx["origin"], granted)


def _named_grant(tx: dict[str, Any], grant: str, transaction: Lookup) -> dict[str, Any]:
    """The share transaction ``tx`` names as its grant; a grant not received yet holds ``tx`` like a
    missing parent."""
    try:
        return transaction(grant)
    except TransactionNotFound:
        raise UnknownParents(f"the share transaction {grant} that {tx['gid']} relies on has not arrived",
                             [grant]) from None


def check_sharer(node: str, shared: Entity | None, transaction: Lookup) -> None:
    """Refuse a share (or its revocation) of ``shared`` made by any node but its owner."""
    owner = owner_of(shared, transaction) if shared is not None else None
    if shared is not None and owner is not None and node != owner:
        raise Forbidden(f"only {owner}, which created {shared.ENTITY} {shared.gid}, can share it; not {node}")


def check_grant(item_gid: str, owner: str, editor_node: str, grant: dict[str, Any]) -> None:
    """The share transaction an edit names must let ``editor_node`` edit the item: a share of this
    item made by its owner, naming that node, with permission ``edit``, not revoked."""
    payload = grant["payload"]
    if grant["kind"] not in GRANT_KINDS or payload["item"] != item_gid or grant["origin"] != owner:
        raise Forbidden(f"transaction {grant['gid']} is not a share of item {item_gid} by its owner {owner}")
    if payload["peer"] != editor_node:
        raise Forbidden(f"share {grant['entity_gid']} is for {payload['peer']}, not {editor_node}")
    if payload["revoked"] or payload["permission"] != "edit":
        state = "revoked" if payload["revoked"] else f"for {payload['permission']} only"
        raise Forbidden(f"share {grant['entity_gid']} of item {item_gid} is {state}: {editor_node} cannot edit it")


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
    scope = narrowest_scope([m[0] for m in marks])
    restricted = any(len(m) > 2 and m[2] for m in marks)
    if bool(tx["payload"].get("owner_edits_only", False)) != restricted:
        raise Forbidden(f"{whose}: only its owner restricts its edits to itself or lifts that, not {tx['origin']}")
    if scope not in OPEN_SCOPES or restricted:
        grant = tx["payload"].get("grant") if entity.ENTITY == "item" else None
        if grant is None:
            why = "its owner edits it alone" if restricted else f"is {scope}"
            raise Forbidden(f"{whose} and {why}: only its owner or a node holding an edit share changes it, "
                            f"not {tx['origin']}")
        check_grant(entity.gid, owner, tx["origin"], _named_grant(tx, grant, transaction))
    if tx["scope"] != scope:
        raise Forbidden(f"{whose}: only its owner changes its scope ({scope} -> {tx['scope']}), "
                        f"not {tx['origin']}")
    deleted = any(m[1] for m in marks)
    if bool(tx["payload"].get("deleted", deleted)) != deleted:
        verb = "restores" if deleted else "deletes"
        raise Forbidden(f"{whose}: only its owner {verb} it, not {tx['origin']}")
