"""Signed transactions made without a node, for tests and benchmarks.

A ``SigningPeer`` is a remote node reduced to its name and signing key: it
makes valid, signed wire transactions (creations, edits on any parent,
merges, tags, shares) that another node's ``receive`` accepts once it
trusts the peer's keys (``trust``). It is not ``infrastructure.peers.Peer``,
a node's record of a peering.

The local editor of the tests' nodes is ``EDITOR``; ``author(node_name)``
is the author id it writes under on a node, ``AUTHOR`` on the default node
of the ``node`` fixture.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from domain.transaction import checksum, owned_entity_gid, signing_input
from infrastructure.signing import SigningKey

if TYPE_CHECKING:
    from infrastructure.node import Node

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

EDITOR = "ann"


def author(node_name: str) -> str:
    """The author id of the tests' editor on the node named ``node_name``."""
    return f"{EDITOR}@{node_name}"


AUTHOR = author("urn:domain:a.example.org")  # the node fixture's default host


@dataclass
class SigningPeer:
    host: str = "b.example.net"
    key: SigningKey = field(default_factory=lambda: SigningKey.generate("ES256"))
    _clock: Any = field(default_factory=itertools.count)

    @property
    def name(self) -> str:
        return f"urn:domain:{self.host}"

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.public_jwk()]}

    def now(self) -> str:
        moment = _EPOCH + timedelta(milliseconds=next(self._clock))
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def tx(self, entity: str, entity_gid: str | None, kind: str, parents: list[str], payload: dict[str, Any],
           *, scope: str = "NETWORK", author: str = "bob", created_at: str | None = None) -> dict[str, Any]:
        """A signed transaction; ``entity_gid`` None: a creation minting its owner-bound entity gid."""
        gid = str(uuid.uuid4())
        tx = {
            "gid": gid,
            "entity": entity,
            "entity_gid": entity_gid or owned_entity_gid(self.name, gid),
            "kind": kind,
            "parents": parents,
            "origin": self.name,
            "author": f"{author}@{self.name}",
            "created_at": created_at or self.now(),
            "scope": scope,
            "payload": payload,
            "checksum": checksum(payload),
        }
        tx["signature"] = self.key.sign(signing_input(tx))
        return tx

    def create_item(self, title: str = "title", markdown: str = "text\n", **kw: Any) -> dict[str, Any]:
        return self.tx("item", None, "item.created", [], document(title, markdown), **kw)

    def edit(self, base: dict[str, Any], *, title: str | None = None, markdown: str | None = None,
             tags: list[str] | None = None, **kw: Any) -> dict[str, Any]:
        old = base["payload"]
        payload = document(old["title"] if title is None else title,
                           old["markdown"] if markdown is None else markdown,
                           old["tags"] if tags is None else tags, old["forked_from"])
        return self.tx("item", base["entity_gid"], "item.edited", [base["gid"]], payload,
                       scope=kw.pop("scope", base["scope"]), **kw)

    def merge(self, heads: list[dict[str, Any]], markdown: str, **kw: Any) -> dict[str, Any]:
        payload = document(heads[0]["payload"]["title"], markdown)
        return self.tx("item", heads[0]["entity_gid"], "item.merged", sorted(h["gid"] for h in heads),
                       payload, **kw)

    def create_tag(self, name: str = "tag", **kw: Any) -> dict[str, Any]:
        return self.tx("tag", None, "tag.created", [], {"name": name, "deleted": False}, **kw)

    def grant(self, item: dict[str, Any], peer: str, permission: str = "read", **kw: Any) -> dict[str, Any]:
        payload = {"item": item["entity_gid"], "peer": peer, "permission": permission, "revoked": False}
        return self.tx("share", None, "share.granted", [], payload, **kw)


# bench/ still imports the old name; drop this alias once it imports SigningPeer.
Peer = SigningPeer


def trust(node: Node, *peers: SigningPeer) -> None:
    """Pin the peers' keys on ``node``, so it accepts what they sign."""
    for peer in peers:
        node.keys.pin(peer.name, peer.jwks)


def document(title: str, markdown: str, tags: list[str] | None = None,
             forked_from: list[str] | None = None, deleted: bool = False) -> dict[str, Any]:
    return {"title": title, "markdown": markdown, "tags": sorted(tags or []),
            "forked_from": sorted(forked_from or []), "deleted": deleted}


def history(peer: SigningPeer, items: int, edits: int, markdown_bytes: int = 200) -> list[dict[str, Any]]:
    """items x (1 creation + edits) transactions, in an order a receiver can apply."""
    body = ("lorem ipsum dolor sit amet " * (markdown_bytes // 27 + 1))[:markdown_bytes]
    txs = []
    for i in range(items):
        tx = peer.create_item(f"item {i}", body)
        txs.append(tx)
        for e in range(edits):
            tx = peer.edit(tx, markdown=f"{body}\nedit {e}\n")
            txs.append(tx)
    return txs
