"""Edits by share holders and reshare requests, judged from the share transaction they name (both stores).

The node under test receives from two signing peers: ``owner`` (who creates an OWNER item and
shares it) and ``holder`` (who edits it or asks to reshare it), in any order.
"""

from __future__ import annotations

import pytest

from domain.receiving import PENDING, REFUSED, STORED
from tests.factory import SigningPeer, trust


@pytest.fixture
def peers(node) -> tuple[SigningPeer, SigningPeer]:
    owner, holder = SigningPeer("owner.example.org"), SigningPeer("holder.example.org")
    trust(node, owner)
    trust(node, holder)
    return owner, holder


def granted_edit(holder: SigningPeer, item: dict, grant: dict, markdown: str = "by the holder\n") -> dict:
    edit = holder.edit(item, markdown=markdown)
    payload = dict(edit["payload"], grant=grant["gid"])
    return holder.tx("item", item["entity_gid"], "item.edited", [item["gid"]], payload, scope=item["scope"])


def statuses(node, txs: list[dict]) -> list[str]:
    return [o.status for o in node.app.receive(txs, sender="urn:domain:relay.example.org")]


def test_an_edit_share_lets_its_peer_edit_an_owner_item_and_nothing_else_does(node, peers):
    owner, holder = peers
    item = owner.create_item(scope="OWNER")
    edit_share = owner.grant(item, holder.name, "edit", scope="OWNER")
    read_share = owner.grant(item, holder.name, "read", scope="OWNER")
    for_someone_else = owner.grant(item, "urn:domain:other.example.org", "edit", scope="OWNER")
    forged_share = holder.grant(item, holder.name, "edit", scope="OWNER")  # not by the owner: refused itself
    assert statuses(node, [item, edit_share, read_share, for_someone_else]) == [STORED] * 4
    assert statuses(node, [forged_share]) == [REFUSED]

    results = node.app.receive([holder.edit(item, markdown="no grant\n"),
                                granted_edit(holder, item, read_share),
                                granted_edit(holder, item, for_someone_else),
                                granted_edit(holder, item, edit_share)])

    assert [o.status for o in results] == [REFUSED, REFUSED, REFUSED, STORED]
    assert "edit share" in results[0].reason
    assert "for read only" in results[1].reason
    assert "is for urn:domain:other.example.org" in results[2].reason


def test_an_edit_whose_grant_has_not_arrived_waits_for_it_and_a_revoke_does_not_undo_it(node, peers):
    owner, holder = peers
    item = owner.create_item(scope="OWNER")
    share = owner.grant(item, holder.name, "edit", scope="OWNER")
    edit = granted_edit(holder, item, share)
    revoke = owner.tx("share", share["entity_gid"], "share.revoked", [share["gid"]],
                      dict(share["payload"], revoked=True), scope="OWNER")

    assert statuses(node, [item, edit]) == [STORED, PENDING]  # held until the grant comes
    assert statuses(node, [share, revoke]) == [STORED, STORED]
    node.federation.retry_pending()

    assert node.app.transactions([edit["gid"]])  # made under a live grant: accepted, whatever came after


def test_only_an_edit_holder_asks_for_a_reshare_and_only_the_owner_changes_a_share(node, peers):
    owner, holder = peers
    item = owner.create_item(scope="OWNER")
    read = owner.grant(item, holder.name, "read", scope="OWNER")
    edit = owner.grant(item, holder.name, "edit", scope="OWNER")
    assert statuses(node, [item, read, edit]) == [STORED] * 3

    def request(grant: dict) -> dict:
        payload = {"item": item["entity_gid"], "peer": "urn:domain:third.example.org", "permission": "read",
                   "revoked": False, "grant": grant["gid"]}
        return holder.tx("share", None, "share.requested", [], payload, scope="OWNER")

    changed = holder.tx("share", edit["entity_gid"], "share.changed", [edit["gid"]],
                        dict(edit["payload"], permission="read"), scope="OWNER")

    results = node.app.receive([request(read), request(edit), changed])

    assert [o.status for o in results] == [REFUSED, STORED, REFUSED]
    assert "only" in results[2].reason and owner.name in results[2].reason
