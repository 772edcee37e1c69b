"""The conflict detector and the review on real stores (SQLite and PostgreSQL), without HTTP.

Transactions are made by signing peers (``tests/factory.py``) sharing one
clock and received by nodes as from the network; several nodes get the same
transaction set in different orders and batches.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from domain import review
from domain.transaction import signing_input
from infrastructure.node import Node
from projections import conflicts
from tests.factory import AUTHOR, SigningPeer, author, document, trust


class Peers:
    def __init__(self) -> None:
        clock = itertools.count()
        self.north = SigningPeer(host="north.example.net", _clock=clock)
        self.south = SigningPeer(host="south.example.net", _clock=clock)

    def trusted_by(self, node: Node) -> Node:
        trust(node, self.north, self.south)
        return node

    def item(self, markdown: str = "a\nb\nc\nd\n") -> dict[str, Any]:
        return self.north.tx("item", None, "item.created", [], document("Plan", markdown), author="nia")


def receive(node: Node, *txs: dict[str, Any]) -> None:
    outcomes = node.app.receive(list(txs))
    assert {o.status for o in outcomes} <= {"stored", "duplicate"}, outcomes


def open_conflicts(node: Node) -> list[dict[str, Any]]:
    with node.db.read() as cur:
        return [{k: row[k] for k in ("item_gid", "heads", "since")} for row in conflicts.list_open(cur)]


def comparable(result: review.Review) -> dict[str, Any]:
    return {"heads": [h.gid for h in result.heads], "base": result.base.gid if result.base else None,
            "merge_bases": result.merge_bases, "proposal": result.proposal}


def test_a_second_head_from_a_peer_flags_the_item_as_soon_as_it_is_stored(node: Node) -> None:
    peers = Peers()
    peers.trusted_by(node)
    root = peers.item()
    receive(node, root)
    local = node.app.edit_item(root["entity_gid"], parent=root["gid"], author=AUTHOR, markdown="local\n")
    before = open_conflicts(node)

    remote = peers.south.edit(root, markdown="remote\n")
    receive(node, remote)

    assert before == []
    assert open_conflicts(node) == [{"item_gid": root["entity_gid"], "heads": sorted([local.gid, remote["gid"]]),
                                     "since": max(node.app.transaction(local.gid)["created_at"],
                                                  remote["created_at"])}]


def test_a_local_merge_of_some_heads_keeps_the_flag_and_a_merge_naming_all_heads_clears_it(node: Node) -> None:
    peers = Peers()
    peers.trusted_by(node)
    root = peers.item()
    heads = [peers.north.edit(root, markdown=f"{i}\n") for i in range(3)]
    receive(node, root, *heads)

    partial = node.app.merge_item(root["entity_gid"], heads=[heads[0]["gid"], heads[1]["gid"]], author=AUTHOR,
                                  document=document("Plan", "0 and 1\n"))
    after_partial = open_conflicts(node)
    node.app.resolve_conflict(root["entity_gid"], heads=[partial.gid, heads[2]["gid"]], author=AUTHOR,
                              document=document("Plan", "all\n"))

    assert [row["heads"] for row in after_partial] == [sorted([partial.gid, heads[2]["gid"]])]
    assert open_conflicts(node) == []


def test_the_same_transactions_in_any_order_give_the_same_conflicts_and_reviews_on_every_node(
        make_node: Callable[..., Node]) -> None:
    peers = Peers()
    root = peers.item()
    # Two lines of history, each several transactions long, on one item ...
    a1 = peers.north.edit(root, markdown="A\nb\nc\nd\n", author="alice")
    c1 = peers.south.edit(root, markdown="a\nb\nc\nD\n", author="carol")
    a2 = peers.north.edit(a1, markdown="A\nB\nc\nd\n", author="alice")
    c2 = peers.south.edit(c1, markdown="a\nb\nC\nD\n", author="carol")
    # ... and a criss-cross on a second item, with three heads in the end.
    other = peers.item("x\ny\n")
    left, right = peers.north.edit(other, markdown="X\ny\n"), peers.south.edit(other, markdown="x\nY\n")
    m1, m2 = peers.north.merge([left, right], "X\nY\n"), peers.south.merge([left, right], "X\nY\n")
    x, y = peers.north.edit(m1, markdown="X\nY\nnorth\n"), peers.south.edit(m2, markdown="south\nX\nY\n")
    z = peers.north.edit(m2, title="Retitled")
    everything = [root, a1, c1, a2, c2, other, left, right, m1, m2, x, y, z]
    orders = [
        [[tx] for tx in everything],  # one at a time, north's line first
        [[tx] for tx in [root, c1, c2, a1, a2, other, right, left, m2, z, y, m1, x]],  # south's line first
        [list(reversed(everything))],  # one batch, children listed before their parents
    ]
    nodes = [peers.trusted_by(make_node(f"n{i}.example.org")) for i in range(len(orders))]

    for node, batches in zip(nodes, orders, strict=True):
        for batch in batches:
            receive(node, *batch)

    listed = [open_conflicts(node) for node in nodes]
    reviews = [[comparable(node.app.review_conflict(gid)) for gid in (root["entity_gid"], other["entity_gid"])]
               for node in nodes]
    nodes[0].projector.rebuild()
    assert listed[0] == listed[1] == listed[2] == open_conflicts(nodes[0])
    # root: the later of the two lines' first transactions; other: of the pairs, (x, y) split first, at m2
    assert [(row["item_gid"], row["since"]) for row in listed[0]] == [(root["entity_gid"], c1["created_at"]),
                                                                       (other["entity_gid"], m2["created_at"])]
    assert reviews[0] == reviews[1] == reviews[2]
    assert reviews[0][0]["base"] == root["gid"] and reviews[0][1]["merge_bases"] == sorted([left["gid"],
                                                                                            right["gid"]])


def test_a_review_reads_the_aggregate_and_one_stored_transaction_only(node: Node) -> None:
    peers = Peers()
    peers.trusted_by(node)
    root = peers.item()
    chain = [root]
    for i in range(150):  # past a snapshot, so the history is long and not all in memory
        chain.append(peers.north.edit(chain[-1], markdown=f"a\nb\nc\nd\n{i}\n"))
    heads = [peers.north.edit(chain[-1], markdown="north\nb\nc\nd\n149\n"),
             peers.south.edit(chain[-1], markdown="a\nb\nc\nsouth\n149\n")]
    receive(node, *chain, *heads)
    item = node.app.entity(root["entity_gid"])
    loaded: list[str] = []

    def load(gid: str) -> dict[str, Any]:
        loaded.append(gid)
        return node.app.transaction(gid)

    result = review.review(item.gid, item.parents_of, item.head_states, load)

    assert loaded == [chain[-1]["gid"]]
    assert result.base is not None and result.base.gid == chain[-1]["gid"]
    assert result.proposal.document["markdown"] == "north\nb\nc\nsouth\n149\n"


def test_a_resolution_is_signed_and_federates_like_any_transaction(make_node: Callable[..., Node]) -> None:
    peers = Peers()
    hub, spoke = peers.trusted_by(make_node("hub.example.org")), peers.trusted_by(make_node("spoke.example.org"))
    spoke.keys.pin(hub.name, hub.keyring.jwks())
    root = peers.item()
    heads = [peers.north.edit(root, markdown="n\n"), peers.south.edit(root, markdown="s\n")]
    for node in (hub, spoke):
        receive(node, root, *heads)
    flagged = open_conflicts(spoke)

    merged = hub.app.resolve_conflict(root["entity_gid"], heads=[h["gid"] for h in heads], author=author(hub.name),
                                      document=document("Plan", "n\ns\n"))
    tx = hub.app.transaction(merged.gid)
    receive(spoke, tx)

    assert len(flagged) == 1 and open_conflicts(spoke) == []
    hub.keys.verify(tx, signing_input(tx))
    assert spoke.app.entity(root["entity_gid"]).heads == [merged.gid]
    assert spoke.app.entity(root["entity_gid"]).state == document("Plan", "n\ns\n")
