"""Tables of node-local state: a push's success and its acknowledgement are one write; a token table from an
older version gains what this one needs (both stores)."""

from __future__ import annotations

import jwt

from domain.federation import Breaker
from infrastructure.peers import Peer

NAME = "urn:domain:b.example.net"


def test_a_success_with_an_acknowledgement_closes_the_breaker_and_only_moves_push_after_forward(node):
    node.peers.add(Peer(name=NAME, base_url="http://127.0.0.1:9", send_types=("item",), accept_types=("item",)))
    node.peers.failed(NAME, "2026-12-06T05:00:00Z", "down", Breaker(state="open", failures=3, open_until=9e9), 9e9)
    node.peers.acknowledge(NAME, 40)

    node.peers.succeeded(NAME, "2026-12-06T06:00:00Z", acknowledged=55)
    peer = node.peers.get(NAME)
    assert (peer.push_after, peer.last_success, peer.breaker.state, peer.attempts, peer.next_attempt) \
        == (55, "2026-12-06T06:00:00Z", "closed", 0, 0)

    node.peers.succeeded(NAME, "2026-12-06T06:01:00Z", acknowledged=50)  # a slower, older push ends later
    assert node.peers.get(NAME).push_after == 55
    node.peers.succeeded(NAME, "2026-12-06T06:02:00Z")  # without one: push_after stays
    assert (node.peers.get(NAME).push_after, node.peers.get(NAME).last_success) == (55, "2026-12-06T06:02:00Z")


def test_a_token_table_from_before_sessions_followed_their_token_gains_the_column(node):
    old = node.tokens.issue("ann")
    with node.db.transaction() as cur:
        cur.execute("DROP INDEX editor_tokens_parent")
        cur.execute("ALTER TABLE editor_tokens DROP COLUMN parent")

    node.tokens.create_tables()

    parent = jwt.decode(old, options={"verify_signature": False})["jti"]
    session = jwt.decode(node.tokens.issue("ann", parent=parent), options={"verify_signature": False})["jti"]
    node.tokens.revoke(parent, by="root")
    assert (node.tokens.find(parent).parent, node.tokens.find(session).revoked_by) == (None, "root")
