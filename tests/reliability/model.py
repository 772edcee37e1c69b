"""What each node of a cluster should hold once sync is quiet: the test's oracle.

Built only from the transactions the test made (never from a node's
store) and the peering graph, with the product's visibility rule
(``domain.federation.may_see``) applied to each node's own view of an
entity: its effective scope (the narrowest scope of its heads,
``domain.entity.effective``) and its live shares (no head revoked). A node
M gives a peer N every transaction of an entity M holds when M's view lets
N see that entity.

Two checks bound what a node holds once sync is quiet:
- nothing missing (``missing``): every node holds what it made, and
  everything each of its peers holds and, by the peer's view of what it
  holds, lets it see. This is a closure check on the final holdings, so
  it does not depend on the order in which things arrived.
- nothing it may not see (``may``): the fixed point of the same rule with
  every share ever granted counted as live and every scope an entity ever
  had counted as current. A revoked share or a narrowed scope stops
  further sending but "what was sent stays sent", so a node may hold more
  than its peers would send it now, never more than ``may``.
Without revocations and scope changes visibility only grows, ``may`` is
the least fixed point of the rule, and the two checks make the expectation
exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from domain.entity import effective
from domain.federation import ENTITY_TYPES, Audience, may_see


def heads_of(txs: Iterable[dict[str, Any]]) -> list[str]:
    """Transactions of one entity that no other names as parent."""
    txs = list(txs)
    named = {p for tx in txs for p in tx["parents"]}
    return sorted(tx["gid"] for tx in txs if tx["gid"] not in named)


@dataclass
class View:
    """One node's view of the entities it holds."""

    txs: list[dict[str, Any]]
    ever: bool = False
    by_entity: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for tx in self.txs:
            self.by_entity.setdefault(tx["entity_gid"], []).append(tx)

    def heads(self, entity_gid: str) -> list[dict[str, Any]]:
        txs = self.by_entity.get(entity_gid, [])
        heads = set(heads_of(txs))
        return [tx for tx in txs if tx["gid"] in heads]

    def scope(self, entity_gid: str) -> str | None:
        heads = self.heads(entity_gid)
        return effective(heads)[0] if heads else None

    def creator(self, entity_gid: str) -> str | None:
        return next((tx["origin"] for tx in self.by_entity.get(entity_gid, ()) if not tx["parents"]), None)

    def shared_with(self, item_gid: str) -> set[str]:
        """Peers named by live shares of the item that its creator granted."""
        peers: set[str] = set()
        owner = self.creator(item_gid)
        for share_gid, txs in self.by_entity.items():
            if txs[0]["entity"] != "share" or txs[0]["payload"]["item"] != item_gid:
                continue
            if owner is None or self.creator(share_gid) != owner:
                continue
            if self.ever or not effective(self.heads(share_gid))[1]:
                peers.add(txs[0]["payload"]["peer"])
        return peers

    def scopes(self, entity_gid: str) -> list[str | None]:
        """The current scope; in ``ever`` mode every scope the entity ever had here."""
        if self.ever and entity_gid in self.by_entity:
            return sorted({tx["scope"] for tx in self.by_entity[entity_gid]})
        return [self.scope(entity_gid)]

    def visible(self, tx: dict[str, Any], own_host: str, audience: Audience,
                same_domain: Callable[[str, str], bool]) -> bool:
        entity = tx["entity"]
        key = tx["payload"]["item"] if entity == "share" else tx["entity_gid"]
        peers: set[str] = set()
        owner = None if entity == "tag" else self.creator(key)
        if entity != "tag":
            peers = self.shared_with(key) | ({tx["payload"]["peer"]} if entity == "share" else set())
        return any(may_see(entity, scope, peers, own_host, audience, same_domain, owner) for scope in self.scopes(key))


def reach(made: dict[str, list[dict[str, Any]]], links: dict[str, set[str]],
          same_domain: Callable[[str, str], bool], *, ever: bool) -> dict[str, set[str]]:
    """node -> gids it holds at the fixed point (``made``: node -> transactions it made)."""
    by_gid = {tx["gid"]: tx for txs in made.values() for tx in txs}
    held = {node: {tx["gid"] for tx in txs} for node, txs in made.items()}
    changed = True
    while changed:
        changed = False
        for source in sorted(held):
            view = View([by_gid[g] for g in held[source]], ever=ever)
            own_host = source.removeprefix("urn:domain:")
            for target in sorted(links.get(source, ())):
                audience = Audience(target, ENTITY_TYPES, relay=True)  # the test cluster's peers relay
                new = {g for g in held[source] - held[target]
                       if view.visible(by_gid[g], own_host, audience, same_domain)}
                if new:
                    held[target] |= new
                    changed = True
    return held


@dataclass
class Expectation:
    made: dict[str, list[dict[str, Any]]]
    links: dict[str, set[str]]
    same_domain: Callable[[str, str], bool]
    may: dict[str, set[str]] = field(default_factory=dict)
    transactions: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.transactions = {tx["gid"]: tx for txs in self.made.values() for tx in txs}
        self.may = reach(self.made, self.links, self.same_domain, ever=True)

    def missing(self, holdings: dict[str, set[str]]) -> dict[str, set[str]]:
        """node -> what it lacks: its own transactions, and what its peers hold and let it see."""
        lacking = {node: {tx["gid"] for tx in txs} - holdings[node] for node, txs in self.made.items()}
        for source, held in holdings.items():
            view = View([self.transactions[g] for g in held if g in self.transactions])
            own_host = source.removeprefix("urn:domain:")
            for target in self.links.get(source, ()):
                audience = Audience(target, ENTITY_TYPES)
                lacking[target] |= {g for g in held - holdings[target] if g in self.transactions
                                    and view.visible(self.transactions[g], own_host, audience, self.same_domain)}
        return lacking

    def still_visible(self, holdings: dict[str, set[str]], sender: str, target: str, gid: str) -> bool:
        """Does ``sender``, by its view of what it holds, still let ``target`` see ``gid``'s entity?"""
        view = View([self.transactions[g] for g in holdings[sender] if g in self.transactions])
        return view.visible(self.transactions[gid], sender.removeprefix("urn:domain:"),
                            Audience(target, ENTITY_TYPES), self.same_domain)

    def item_heads(self, gids: Iterable[str]) -> dict[str, list[str]]:
        """item gid -> heads, for a node holding these transactions."""
        by_item: dict[str, list[dict[str, Any]]] = {}
        for gid in gids:
            tx = self.transactions[gid]
            if tx["entity"] == "item":
                by_item.setdefault(tx["entity_gid"], []).append(tx)
        return {item: heads_of(txs) for item, txs in by_item.items()}
