"""Where other nodes' keys come from (both stores): direct keys, relays' vouches, disputes, revocations."""

from __future__ import annotations

import pytest

from domain.errors import RevokedKey, UnknownKey
from domain.transaction import owned_entity_gid, signing_input
from infrastructure.peers import Peer, PeerStore
from infrastructure.signing import SigningKey
from tests import factory

D = "urn:domain:d.example.org"  # a node reached only through relays
R1, R2 = "urn:domain:hub1.example.org", "urn:domain:hub2.example.org"


def jwks(*keys: SigningKey, revoked: list[dict] | None = None) -> dict:
    document = {"keys": [key.public_jwk() for key in keys]}
    return {**document, "revoked": revoked} if revoked else document


def signed(key: SigningKey, origin: str = D, created_at: str = "2026-12-01T12:00:00Z") -> tuple[dict, bytes]:
    gid = "0" * 8 + "-0000-4000-8000-" + "0" * 12
    tx = {"gid": gid, "entity": "item", "entity_gid": owned_entity_gid(origin, gid), "kind": "item.created",
          "parents": [], "origin": origin, "author": f"ann@{origin}", "created_at": created_at, "scope": "NETWORK",
          "payload": factory.document("t", "x\n"), "checksum": ""}
    data = signing_input(tx)
    return dict(tx, signature=key.sign(data)), data


def kids(node, origin: str = D) -> set[str]:
    return set(node.keys.keyset(origin, reload=True).kids)


def test_relays_vouches_count_only_while_they_agree_and_the_admin_settles_a_dispute(node):
    k1, k2 = SigningKey.generate("ES256"), SigningKey.generate("ES256")

    assert node.keys.vouch(D, R1, jwks(k1)) is False
    assert kids(node) == {k1.kid}
    assert node.keys.vouch(D, R2, jwks(k2)) is True  # a second relay says otherwise
    assert kids(node) == set()
    assert [(d.origin, d.vouched) for d in node.keys.disputes()] == [(D, {R1: [k1.kid], R2: [k2.kid]})]
    with pytest.raises(UnknownKey):
        node.keys.verify(*signed(k1))

    assert node.keys.trust(D, R1) == [k1.kid]
    assert kids(node) == {k1.kid} and node.keys.disputes() == []
    node.keys.verify(*signed(k1))
    assert node.keys.vouch(D, R2, jwks(k2)) is True  # disagrees with what the admin trusted
    assert kids(node) == {k1.kid}  # the trusted key still verifies; the vouched one is not used
    assert node.keys.vouch(D, R2, jwks(k1, k2)) is False  # a rotation: the old key is still listed
    assert kids(node) == {k1.kid, k2.kid}


def test_a_vouch_never_applies_to_a_direct_peer_nor_to_node_tokens(node):
    peer_key, planted = SigningKey.generate("ES256"), SigningKey.generate("ES256")
    peer = "urn:domain:p.example.org"
    node.peers.add(Peer(name=peer, base_url="https://p.example.org", send_types=(), accept_types=()))
    node.keys.pin(peer, jwks(peer_key))

    node.keys.vouch(peer, R1, jwks(planted))

    assert kids(node, peer) == {peer_key.kid}
    assert set(node.keys.direct_keyset(peer).kids) == {peer_key.kid}
    node.keys.vouch(D, R1, jwks(planted))
    assert set(node.keys.direct_keyset(D).kids) == set()  # node tokens: never a vouched key


def test_a_revoked_key_verifies_only_what_was_created_before_its_time_and_the_earliest_time_wins(node):
    key = SigningKey.generate("ES256")
    node.keys.vouch(D, R1, jwks(key, revoked=[{"kid": key.kid, "since": "2026-12-01T12:00:00Z"}]))
    node.keys.verify(*signed(key, created_at="2026-12-01T11:59:59.999999Z"))
    with pytest.raises(RevokedKey, match="revoked key"):
        node.keys.verify(*signed(key, created_at="2026-12-01T12:00:00.000001Z"))

    node.keys.pin(D, jwks(key, revoked=[{"kid": key.kid, "since": "2026-12-02T00:00:00Z"},
                                        {"kid": 7, "since": "garbage"}]))  # later, and junk: ignored

    with pytest.raises(RevokedKey):
        node.keys.verify(*signed(key, created_at="2026-12-01T13:00:00Z"))
    assert node.keys.jwks(D)["revoked"] == [{"kid": key.kid, "since": "2026-12-01T12:00:00.000000Z"}]


def test_a_peers_table_from_before_relays_gains_the_column(node):
    with node.db.transaction() as cur:
        cur.execute("ALTER TABLE peers DROP COLUMN relay")

    PeerStore(node.db).create_tables()

    node.peers.add(Peer(name=R1, base_url="https://hub1.example.org", send_types=(), accept_types=(), relay=True))
    assert node.peers.get(R1).relay is True
