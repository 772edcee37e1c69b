"""Hostile senders for the convergence test: a peer that signs whatever it likes with its own key.

``send(cluster, a, b, c)`` makes node ``b``'s peer forge one transaction
against what node ``a`` holds and deliver it to ``a``'s inbox through the
same pipeline as a push (key learning, verification, authority, pending):

0. a creation claiming another origin (a forged origin);
1. a post-dated (+290 s) edit of another node's item that changes its scope;
2. a creation under the gid another node minted for one of its items (squatting);
3. a deletion of another node's item (an edit without the right to make it).

Each is refused; the test checks that none is stored anywhere.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.item import Item
from domain.transaction import SCOPES, checksum, owned_entity_gid, signing_input
from infrastructure.node import Node
from tests.reliability.cluster import Cluster

KINDS = ("forged origin", "post-dated rescope", "squatted gid", "deletion without rights")


def _now(later: float = 0.0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=later)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _sign(sender: Node, **tx: Any) -> dict[str, Any]:
    tx = {"gid": str(uuid.uuid4()), "parents": [], "origin": sender.name, "author": f"mallory@{sender.name}",
          "created_at": _now(), "scope": "NETWORK", **tx}
    tx["checksum"] = checksum(tx["payload"])
    tx["signature"] = sender.keyring.active.sign(signing_input(tx))
    return tx


def _foreign_item(target: Node, sender: Node, k: int) -> Item | None:
    """An item ``target`` holds that ``sender`` did not create."""
    with target.db.read() as cur:
        gids = [r["item_gid"] for r in cur.execute(
            "SELECT item_gid FROM documents WHERE origin <> ? ORDER BY item_gid", (sender.name,)).fetchall()]
    return target.app.entity(gids[k % len(gids)], Item) if gids else None


def forge(cluster: Cluster, target: Node, sender: Node, kind: int, k: int) -> dict[str, Any] | None:
    document = {"title": "hostile", "markdown": "hostile\n", "tags": [], "forked_from": [], "deleted": False}
    if kind == 0:
        others = [n.name for n in cluster.nodes if n.name not in (sender.name, target.name)]
        origin = others[k % len(others)] if others else "urn:domain:nowhere.example.org"
        gid = str(uuid.uuid4())
        return _sign(sender, gid=gid, entity="item", entity_gid=owned_entity_gid(origin, gid), kind="item.created",
                     origin=origin, author=f"mallory@{origin}", payload=document)
    item = _foreign_item(target, sender, k)
    if item is None:
        return None
    head = item.head_states[item.heads[k % len(item.heads)]]
    if kind == 1:
        scope = SCOPES[(SCOPES.index(head["scope"]) + 1 + k % 4) % len(SCOPES)]  # any other scope
        return _sign(sender, entity="item", entity_gid=item.gid, kind="item.edited", parents=[head["gid"]],
                     scope=scope, created_at=_now(290), payload=dict(head["payload"], markdown="mine now\n"))
    if kind == 2:
        return _sign(sender, entity="item", entity_gid=item.gid, kind="item.created", payload=document)
    return _sign(sender, entity="item", entity_gid=item.gid, kind="item.deleted", parents=[head["gid"]],
                 scope=head["scope"], payload=dict(head["payload"], deleted=True))


def send(cluster: Cluster, a: int, b: int, c: int) -> tuple[str, dict[str, Any], str] | None:
    """Forge and deliver one hostile transaction; (what it was, the transaction, its outcome)."""
    index = a % len(cluster.nodes)
    target = cluster.nodes[index]
    peers = cluster.peers_of(index)
    if not peers:
        return None
    sender = next(n for n in cluster.nodes if n.name == peers[b % len(peers)])
    tx = forge(cluster, target, sender, c % len(KINDS), c // len(KINDS) + b)
    if tx is None:
        return None
    outcome = target.syncer.inbox.receive_from(target.peers.get(sender.name), [tx])[0]
    return KINDS[c % len(KINDS)], tx, outcome.status
