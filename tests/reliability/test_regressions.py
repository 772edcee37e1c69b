"""Regression tests of the product bugs the reliability suite found (both stores).

Each test names the behaviour that was broken; docs/reliability.md lists
which suite found it and how it was fixed.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from api.app import create_app
from domain.errors import BatchRefused, Forbidden, InvalidTransaction
from domain.federation import Audience, may_see
from domain.transaction import checksum, signing_input
from infrastructure.domains import same_domain
from infrastructure.federation_client import PeerError, answered
from infrastructure.node import Node
from infrastructure.peers import Peer as PeerRow
from infrastructure.settings import Settings
from tests.factory import SigningPeer, author
from tests.reliability.cluster import Cluster
from tests.reliability.transport import Network

with warnings.catch_warnings():  # as tests/api/conftest.py: starlette's notice about httpx
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

@pytest.fixture
def cluster(store: Callable[[], str | None], tmp_path: Path) -> Iterator[Cluster]:
    """n0.alpha.org - n1.beta.net - n2.alpha.org, all peered with each other (none a relay), in one process."""
    network = Network(seed=0)
    trio = Cluster(tmp_path, 3, [(0, 1), (0, 2), (1, 2)], network, [store() for _ in range(3)], relay=False)
    yield trio
    trio.close()


def held(node: Node) -> set[str]:
    with node.db.read() as cur:
        return {r["gid"] for r in cur.execute("SELECT gid FROM transactions").fetchall()}


def settle(cluster: Cluster) -> None:
    for _ in range(3):
        cluster.sync_round()


# --- found by the convergence property ------------------------------------------------
def test_an_item_shared_after_the_peers_cursor_passed_it_reaches_that_peer(cluster):
    n0, n1, _ = cluster.nodes
    item = n0.app.create_item(author=author(n0.name), title="private", markdown="x\n", scope="OWNER")
    settle(cluster)  # n1's pull cursor and n0's push position pass the item, invisible to n1

    share = n0.app.grant_share(author=author(n0.name), item_gid=item.entity_gid, peer=n1.name, permission="read")
    settle(cluster)

    assert {item.gid, share.gid} <= held(n1)


def test_a_share_may_be_seen_by_the_peer_it_names_before_its_item_is_known():
    named = Audience("urn:domain:b.example.net")

    assert may_see("share", None, {named.name}, "hub.example.org", named, same_domain)
    assert not may_see("share", None, {"urn:domain:c.example.net"}, "hub.example.org", named, same_domain)


def test_a_held_transaction_whose_ancestor_fetch_failed_is_fetched_again_on_the_next_pull(cluster):
    n0, n1, _ = cluster.nodes  # n0.alpha.org and n1.beta.net: DOMAIN items of n0 stay away from n1
    item = n0.app.create_item(author=author(n0.name), title="t", markdown="x\n", scope="DOMAIN")
    settle(cluster)
    widened = n0.app.edit_item(item.entity_gid, parent=item.gid, author=author(n0.name), scope="NETWORK")
    edit = n0.app.transaction(widened.gid)
    away = cluster.network.nodes.pop(n0.config.base_url)  # n1 cannot reach n0 for the ancestors
    n1.federation.inbox(n0.name, [edit])
    assert n1.peers.pending_count() == 1
    cluster.network.register(away)

    n1.syncer.pull(n0.name)

    assert n1.peers.pending_count() == 0
    assert {item.gid, widened.gid} <= held(n1)


def test_a_widened_item_brings_its_earlier_shares_with_its_history(cluster):
    n0, n1, n2 = cluster.nodes
    item = n0.app.create_item(author=author(n0.name), title="t", markdown="x\n", scope="OWNER")
    share = n0.app.grant_share(author=author(n0.name), item_gid=item.entity_gid, peer=n2.name, permission="read")
    settle(cluster)
    assert share.gid not in held(n1)

    widened = n0.app.edit_item(item.entity_gid, parent=item.gid, author=author(n0.name), scope="NETWORK")
    settle(cluster)

    assert {item.gid, share.gid, widened.gid} <= held(n1)


def test_history_that_became_visible_behind_the_cursor_arrives_with_the_edit_that_opened_it(cluster):
    n0, n1, n2 = cluster.nodes
    item = n2.app.create_item(author=author(n2.name), title="t", markdown="x\n", scope="NETWORK")
    settle(cluster)
    narrowed = n2.app.edit_item(item.entity_gid, parent=item.gid, author=author(n2.name), scope="OWNER")  # owner
    side = n1.app.edit_item(item.entity_gid, parent=item.gid, author=author(n1.name), markdown="side\n")
    cluster.pull(n2, n1.name)  # n2 gets the side branch; the item stays OWNER there (its narrowest head)
    cluster.pull(n0, n2.name)  # nothing n0 may see: its cursor moves past both
    widened = n2.app.edit_item(item.entity_gid, parent=narrowed.gid, author=author(n2.name), scope="NETWORK")
    before = held(n0)
    assert not {narrowed.gid, side.gid, widened.gid} & before

    cluster.pull(n0, n2.name)  # the widening edit brings the item's whole history, behind the cursor too

    assert {narrowed.gid, side.gid, widened.gid} <= held(n0)
    result = n0.syncer.reconcile(n2.name)  # and a gid-diff finds nothing left
    assert result.stored == 0


# --- found by the bad-input corpus --------------------------------------------------------
def test_a_nul_character_is_refused_and_the_node_keeps_working(node):
    with pytest.raises(InvalidTransaction):
        node.app.create_item(author=author(node.name), title="a\x00b", markdown="x\n")

    node.app.create_item(author=author(node.name), title="fine", markdown="x\n")

    assert node.projector.position() == node.app.recorder.max_notification_id() == 1


def test_a_parent_cycle_is_refused_instead_of_held_forever(node, peer):
    created = peer.create_item()
    node.app.receive([created])
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    first = peer.edit(created, markdown="a\n")
    second = peer.edit(created, markdown="b\n")
    first = resigned(peer, {**first, "gid": a, "parents": [b]})
    second = resigned(peer, {**second, "gid": b, "parents": [a]})

    outcomes = node.app.receive([first, second], sender=peer.name)

    assert [o.status for o in outcomes] == ["refused", "refused"]
    assert "cycle" in outcomes[0].reason
    assert node.peers.pending_count() == 0


def test_a_parent_of_another_entity_is_refused_instead_of_held_forever(node, peer):
    one, other = peer.create_item("one"), peer.create_item("other")
    node.app.receive([one, other])
    stray = resigned(peer, {**peer.edit(one, markdown="x\n"), "parents": [other["gid"]]})

    outcome = node.app.receive([stray], sender=peer.name)[0]

    assert outcome.status == "refused" and "another entity" in outcome.reason
    assert node.peers.pending_count() == 0


@pytest.mark.parametrize("created_at", ["2999-01-01T00:00:00Z", "1970-01-01T00:00:00Z"])
def test_a_transaction_dated_far_in_the_future_or_before_2000_is_refused(node, peer, created_at):
    outcome = node.app.receive([peer.create_item(created_at=created_at)])[0]

    assert outcome.status == "refused" and "created_at" in outcome.reason


def test_an_inbox_batch_refused_entirely_is_an_error_that_still_answers_the_pusher(node, peer):
    node.peers.add(peer_row(peer))
    forged = {**peer.create_item(), "signature": peer.create_item()["signature"]}

    with pytest.raises(BatchRefused) as refused:
        node.federation.inbox(peer.name, [forged])

    assert refused.value.status == 422
    results = refused.value.extra["results"]
    assert answered(PeerError("422", 422, answer={"results": results})) == {"results": results}
    with pytest.raises(PeerError):
        answered(PeerError("busy", 429, answer={"detail": "busy"}))


def test_a_peer_cannot_grant_itself_a_share_of_an_owner_item(node, peer):
    item = node.app.create_item(author=author(node.name), title="mine", markdown="x\n", scope="OWNER")
    forged = peer.grant(node.app.transaction(item.gid), peer.name, "edit", scope="OWNER")
    node.peers.add(peer_row(peer))

    outcome = node.app.receive([forged])[0]

    assert outcome.status == "refused" and isinstance(outcome.error, Forbidden)
    assert node.federation.fetch(peer.name, [item.gid]) == []


def test_a_share_made_by_another_node_than_the_items_creator_opens_nothing(node, peer):
    created = peer.create_item(scope="OWNER")
    node.app.receive([created])

    with pytest.raises(Forbidden):
        node.app.grant_share(author=author(node.name), item_gid=created["entity_gid"], peer="urn:domain:c.example.net",
                             permission="read")


# --- found by schemathesis ---------------------------------------------------------------
def test_a_nul_character_in_a_query_or_path_parameter_is_a_422_not_a_server_error(node):
    client = TestClient(create_app(node.settings, node), raise_server_exceptions=False)
    admin = {"Authorization": f"Bearer {node.tokens.issue('ann', role='admin')}"}

    search = client.get("/items", params={"q": "a\x00b"}, headers=admin)
    retry = client.post("/admin/peers/a%00b/retry", headers=admin)

    assert (search.status_code, retry.status_code) == (422, 422)


def test_the_federation_api_documents_every_status_it_answers():
    paths = create_app(Settings()).openapi()["paths"]

    for path in ("/federation/inbox", "/federation/transactions:fetch", "/federation/keys"):
        operation = next(iter(paths[path].values()))
        assert {"400", "401", "403", "404", "409", "422"} <= set(operation["responses"]), path


def resigned(peer: SigningPeer, tx: dict) -> dict:
    """``tx`` changed after signing, signed again by the peer (a valid signature over bad content)."""
    tx = {k: v for k, v in tx.items() if k != "signature"}
    tx["checksum"] = checksum(tx["payload"])
    tx["signature"] = peer.key.sign(signing_input(tx))
    return tx


def peer_row(peer: SigningPeer) -> PeerRow:
    """The node's peering with ``peer`` (nothing listens at its URL)."""
    return PeerRow(name=peer.name, base_url="http://127.0.0.1:9", send_types=("item", "tag", "share"),
                   accept_types=("item", "tag", "share"), created_at="2026-01-01T00:00:00Z")
