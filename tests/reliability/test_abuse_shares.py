"""Abuse: a share to a node nobody knows is said to be one (issue 12, finding 11).

``urn:domain:typo.example.org`` used to be granted (201) and the item then
waited forever for a node that does not exist. A share names a node this
node knows (itself, a peer, or a node whose keys it has: pinned, or vouched
for by a relay) or says ``allow_unknown``; otherwise it is 422
``unknown-node`` and nothing is stored. An item the editor may not see is
404 first, whatever the node: the check is no existence oracle.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from infrastructure.node import Node
from infrastructure.peers import Peer
from tests.api.conftest import Api, is_problem
from tests.factory import SigningPeer, trust

TYPO = "urn:domain:typo.example.org"


@pytest.fixture
def api(node: Node) -> Iterator[Api]:
    client = Api(node)
    yield client
    client.client.close()


def share(api: Api, item: dict[str, Any], peer: str, headers: dict[str, str], **extra: Any) -> Any:
    return api.post(f"/items/{item['gid']}/shares", json={"peer": peer, "permission": "read", **extra},
                    headers=headers)


def test_a_share_to_a_node_nobody_knows_is_422_and_stores_nothing(api: Api) -> None:
    ann = api.auth("ann")
    item = api.create(ann, scope="OWNER")
    before = api.outbox()

    refused = share(api, item, TYPO, ann)

    assert is_problem(refused, 422)
    assert refused.json()["type"] == "urn:fedsync:problem:unknown-node"
    assert TYPO in refused.json()["detail"] and "allow_unknown" in refused.json()["detail"]
    assert api.outbox() == before
    assert api.get(f"/items/{item['gid']}/shares", headers=ann).json()["shares"] == []


def test_a_share_to_an_unknown_node_is_granted_when_the_request_says_so(api: Api) -> None:
    ann = api.auth("ann")
    item = api.create(ann, scope="OWNER")

    granted = share(api, item, TYPO, ann, allow_unknown=True)

    assert granted.status_code == 201, granted.text
    assert granted.json()["peer"] == TYPO


def test_shares_to_this_node_its_peers_and_nodes_it_has_keys_of_are_accepted(api: Api) -> None:
    ann = api.auth("ann")
    item = api.create(ann, scope="OWNER")
    pinned, vouched, relay = SigningPeer("pinned.example.net"), SigningPeer("far.example.com"), "urn:domain:hub.org"
    trust(api.node, pinned)
    api.node.keys.vouch(vouched.name, relay, vouched.jwks)
    api.node.peers.add(Peer(name="urn:domain:peer.example.org", base_url="http://127.0.0.1:9",
                            send_types=("item",), accept_types=("item",), created_at="2026-01-01T00:00:00Z"))

    answers = [share(api, item, api.node.name, ann, team="maths"),
               share(api, item, "urn:domain:peer.example.org", ann),
               share(api, item, pinned.name, ann, team="physics"),
               share(api, item, vouched.name, ann)]

    assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]


def test_an_item_the_editor_may_not_see_is_404_before_the_node_is_judged(api: Api) -> None:
    item = api.create(api.auth("ann"), scope="OWNER")
    bob = api.auth("bob")

    unknown_node = share(api, item, TYPO, bob)
    known_node = share(api, item, api.node.name, bob)

    assert is_problem(unknown_node, 404) and is_problem(known_node, 404)
    assert unknown_node.json()["detail"] == known_node.json()["detail"]
