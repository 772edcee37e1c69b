"""Federation refusals and visibility between real node processes (both stores)."""

from __future__ import annotations

import base64
import copy
import time
import uuid

import httpx
import pytest

from domain.transaction import checksum, owned_entity_gid, signing_input
from infrastructure.local_cluster import NodeProcess
from infrastructure.node_auth import issue
from tests import factory
from tests.e2e.conftest import Spawner, link, peer
from tests.e2e.test_federation import outbox, pull, subscribe, wait_until

Trio = tuple[NodeProcess, NodeProcess, NodeProcess]


def start_trio(spawn: Spawner) -> Trio:
    """a and b peered both ways with c; c accepts only items from b."""
    a, b, c = spawn.many("a", "b", "c")
    link(a, c)
    link(a, b)
    peer(c, b, accept=("item",))
    peer(b, c)
    return a, b, c


@pytest.fixture(scope="module")
def trio(module_spawn: Spawner) -> Trio:
    """Shared by the tests that make their own transactions and compare c's outbox with before."""
    return start_trio(module_spawn)


@pytest.fixture
def fresh_trio(spawn: Spawner) -> Trio:
    """For a test that counts everything c holds."""
    return start_trio(spawn)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_by(admin, tx: dict) -> dict:
    tx = dict(tx)
    tx["checksum"] = checksum(tx["payload"])
    tx.pop("signature", None)
    tx["signature"] = admin.keyring.active.sign(signing_input(tx))
    return tx


def deliver(sender, receiver, txs: list[dict]) -> list[dict]:
    admin = sender.admin()
    try:
        return admin.client.deliver(receiver.name, receiver.base_url, txs)["results"]
    finally:
        admin.close()


def test_bad_transactions_in_an_inbox_are_refused_with_reasons_and_nothing_is_stored(trio):
    a, b, c = trio
    admin_a, admin_b = a.admin(), b.admin()
    author = factory.author(admin_a.name)
    r = admin_a.app.create_item(author=author, title="t", markdown="x\n")
    good = admin_a.app.transaction(r.gid)
    deliver(a, c, [good])
    before = len(outbox(c))
    gid = str(uuid.uuid4())
    fresh = dict(good, gid=gid, entity_gid=owned_entity_gid(admin_a.name, gid))

    forged = dict(fresh, signature=good["signature"])
    other_key = signed_by(admin_b, fresh)  # a's name, b's key
    tampered = copy.deepcopy(signed_by(admin_a, fresh))
    tampered["payload"]["markdown"] = "tampered\n"
    tampered["checksum"] = checksum(tampered["payload"])
    fake_header = b64url(b'{"alg":"RS256","kid":"' + b"k" * 43 + b'"}')
    unknown_kid = dict(fresh, signature=fake_header + ".." + b64url(b"s" * 256))
    equivocation = signed_by(admin_a, dict(good, payload=dict(good["payload"], markdown="other\n")))
    tag = admin_b.app.create_tag(author=factory.author(admin_b.name), name="not accepted")
    tag_tx = admin_b.app.transaction(tag.gid)
    admin_a.close()
    admin_b.close()

    results = deliver(a, c, [forged, other_key, tampered, unknown_kid, equivocation])
    type_refused = deliver(b, c, [tag_tx])

    assert [r["status"] for r in results] == ["refused"] * 5
    assert "signature" in results[0]["reason"]
    assert "equivocation" in results[4]["reason"] or "other content" in results[4]["reason"]
    assert type_refused[0]["status"] == "refused" and "not accepted" in type_refused[0]["reason"]
    assert len(outbox(c)) == before


def test_node_tokens_that_are_expired_replayed_or_for_another_node_get_401(trio):
    a, b, c = trio
    admin = a.admin()
    expired = issue(admin.keyring, admin.name, c.name, lifetime=10, now=time.time() - 3600)
    wrong_audience = issue(admin.keyring, admin.name, b.name)
    replayed = issue(admin.keyring, admin.name, c.name)
    admin.close()
    url = f"{c.base_url}/federation/inbox"
    body = {"transactions": []}

    first = httpx.post(url, json=body, headers={"Authorization": f"Bearer {replayed}"})
    again = httpx.post(url, json=body, headers={"Authorization": f"Bearer {replayed}"})
    old = httpx.post(url, json=body, headers={"Authorization": f"Bearer {expired}"})
    elsewhere = httpx.post(url, json=body, headers={"Authorization": f"Bearer {wrong_audience}"})
    anonymous = httpx.post(url, json=body)

    assert first.status_code == 200
    for response in (again, old, elsewhere, anonymous):
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["detail"]


def test_an_unknown_after_gid_is_410_and_an_oversized_batch_is_413(trio):
    a, _, c = trio
    admin = a.admin()
    token = admin.client.token_for(c.name)
    token2 = admin.client.token_for(c.name)
    admin.close()
    before = len(outbox(c))

    gone = httpx.get(f"{c.base_url}/federation/outbox", params={"after": str(uuid.uuid4())},
                     headers={"Authorization": f"Bearer {token}"})
    big = httpx.post(f"{c.base_url}/federation/inbox", json={"transactions": [{}] * 1001},
                     headers={"Authorization": f"Bearer {token2}"})

    assert gone.status_code == 410 and "unknown" in gone.json()["detail"]
    assert big.status_code == 413
    assert len(outbox(c)) == before


def test_owner_and_team_items_leave_only_when_shared_and_domain_stays_in_the_domain(spawn):
    a = spawn("a", host="a.example.org", start=False)
    b = spawn("b", host="b.example.org", start=False)
    c = spawn("c", host="c.example.net", start=False)
    spawn.start(a, b, c)
    link(a, b, relay=False)  # a relay would carry shared items on: see test_shares.py
    link(a, c, relay=False)
    admin = a.admin()
    author = factory.author(admin.name)
    made = {scope: admin.app.create_item(author=author, title=scope, markdown="x\n", scope=scope)
            for scope in ("OWNER", "TEAM", "DOMAIN", "NETWORK", "PUBLIC")}
    shared = admin.app.create_item(author=author, title="shared", markdown="x\n", scope="OWNER")
    share = admin.app.grant_share(author=author, item_gid=shared.entity_gid, peer=c.name, permission="read")
    admin.close()

    pull(b, a)
    pull(c, a)
    anonymous = httpx.get(f"{a.base_url}/federation/outbox").json()["transactions"]

    titles_b = {r["title"] for r in b.query("SELECT title FROM documents")}
    titles_c = {r["title"] for r in c.query("SELECT title FROM documents")}
    assert titles_b == {"DOMAIN", "NETWORK", "PUBLIC"}
    assert titles_c == {"NETWORK", "PUBLIC", "shared"}
    assert {t["payload"]["title"] for t in anonymous} == {"PUBLIC"}
    assert c.query("SELECT share_gid FROM shares") == [{"share_gid": share.entity_gid}]
    assert set(made) == {"OWNER", "TEAM", "DOMAIN", "NETWORK", "PUBLIC"}


def test_revoking_a_share_stops_further_delivery(spawn):
    a, c = spawn.many("a", "c")
    link(a, c)
    subscribe(c, a)
    admin = a.admin()
    author = factory.author(admin.name)
    item = admin.app.create_item(author=author, title="secret", markdown="1\n", scope="OWNER")
    share = admin.app.grant_share(author=author, item_gid=item.entity_gid, peer=c.name, permission="read")
    edit = admin.app.edit_item(item.entity_gid, parent=item.gid, author=author, markdown="2\n")
    wait_until(lambda: {r["gid"] for r in outbox(c)} >= {item.gid, edit.gid, share.gid}, what="shared item")

    admin.app.revoke_share(share.entity_gid, author=author)
    after = admin.app.edit_item(item.entity_gid, parent=edit.gid, author=author, markdown="3\n")
    marker = admin.app.create_item(author=author, title="later", markdown="", scope="NETWORK")
    admin.close()
    wait_until(lambda: marker.gid in {r["gid"] for r in outbox(c)}, what="a later NETWORK item")

    gids_c = {r["gid"] for r in outbox(c)}
    assert after.gid not in gids_c
    assert c.query("SELECT revoked FROM shares")[0]["revoked"] == 1


def test_a_push_batch_larger_than_the_editor_body_limit_is_accepted(fresh_trio):
    a, _, c = fresh_trio
    admin = a.admin()
    author = factory.author(admin.name)
    receipts = [admin.app.create_item(author=author, title=f"big {i}", markdown="x" * 3000) for i in range(400)]
    batch = list(admin.app.transactions([r.gid for r in receipts]).values())
    admin.close()

    results = deliver(a, c, batch)  # about 1.5 MB, over the 1 MiB editor limit

    assert {r["status"] for r in results} == {"stored"}
    assert len(outbox(c)) == 400
