"""Keys that cannot be planted, and revocation, between real node processes (both stores).

The hostile node ``m`` is a real node whose store the test tampers with: it
answers ``/federation/keys`` for other origins with its own key, and signs
transactions and node tokens in their names.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import httpx
import pytest

from domain.transaction import checksum, owned_entity_gid, signing_input, utc_now
from infrastructure.local_cluster import NodeProcess
from infrastructure.node_auth import issue
from infrastructure.signing import Keyring, kid_of
from tests import factory
from tests.e2e.conftest import Spawner, link, peer
from tests.e2e.test_authority import forge, made_on
from tests.e2e.test_federation_guards import deliver
from tests.forkserver import fedsync


def creation_as(hostile: NodeProcess, origin: str) -> dict:
    """An item creation claiming ``origin``, signed with the hostile node's own key."""
    gid = str(uuid.uuid4())
    return forge(hostile, gid=gid, origin=origin, author=f"mallory@{origin}", entity="item",
                 entity_gid=owned_entity_gid(origin, gid), kind="item.created", parents=[],
                 payload=factory.document("planted", "mine\n"))


def claim_keys_of(hostile: NodeProcess, *origins: str) -> None:
    """Make the hostile node answer /federation/keys?origin=X with its own key."""
    admin = hostile.admin()
    try:
        for origin in origins:
            admin.keys.pin(origin, admin.keyring.jwks())
    finally:
        admin.close()


def pinned_kids(node: NodeProcess, origin: str) -> set[str]:
    return {r["kid"] for r in node.query("SELECT kid FROM node_keys WHERE origin = ?", (origin,))} | \
        {r["kid"] for r in node.query("SELECT kid FROM vouched_keys WHERE origin = ?", (origin,))}


def cli(node: NodeProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """The real ``fedsync`` command on the node's data dir and store (a wide terminal: no cut cells)."""
    env = dict(os.environ, FEDSYNC_DATA_DIR=str(node.data_dir), COLUMNS="400")
    if node.database_url:
        env["FEDSYNC_DATABASE_URL"] = node.database_url
    return fedsync(*args, env=env, timeout=60)


def admin_get(node: NodeProcess, path: str) -> dict:
    token = node.token("root", role="admin")
    response = httpx.get(f"{node.base_url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.slow
def test_a_peer_cannot_plant_a_key_for_another_node(spawn: Spawner):
    """r peers with b (its keys come from b itself), m (hostile) and, later, relays; d reaches r only
    through relays."""
    r, b, m, d = spawn.many("r", "b", "m", "d")
    link(r, b)
    link(b, d)
    link(r, m, relay=False)
    claim_keys_of(m, b.name, d.name)
    m_kid = Keyring.load(m.settings.keys_dir).active.kid

    # 1. A direct peer's keys come from that peer only: forged transactions and tokens fail.
    as_b = deliver(m, r, [creation_as(m, b.name)])[0]
    assert as_b["status"] == "refused" and "key" in as_b["reason"]
    assert m_kid not in pinned_kids(r, b.name)
    m_admin = m.admin()
    try:
        forged_token = issue(m_admin.keyring, b.name, r.name)
    finally:
        m_admin.close()
    answer = httpx.get(f"{r.base_url}/federation/outbox", headers={"Authorization": f"Bearer {forged_token}"})
    assert answer.status_code == 401

    # 2. A peer that is not a relay vouches for nobody.
    as_d = deliver(m, r, [creation_as(m, d.name)])[0]
    assert as_d["status"] == "refused"
    assert pinned_kids(r, d.name) == set()

    # 3. Relays that disagree: neither is used until an admin decides.
    honest = made_on(d)
    assert deliver(b, r, [honest])[0]["status"] == "stored"  # b relays d, and vouches d's key
    peer(r, m, relay=True)
    second = deliver(m, r, [creation_as(m, d.name)])[0]
    assert second["status"] == "refused"
    disputes = admin_get(r, "/admin/keys/disputes")["disputes"]
    assert [(x["origin"], sorted(x["vouched"])) for x in disputes] == [(d.name, sorted([b.name, m.name]))]
    flagged = {p["name"]: p["key_disputes"] for p in admin_get(r, "/admin/peers")["peers"]}
    assert flagged[m.name] == flagged[b.name] == [d.name]
    listing = cli(r, "peer", "list")
    assert listing.stdout.count(f"disputed keys of {d.name}") == 2, listing.stdout
    later = made_on(d)
    assert deliver(b, r, [later])[0]["status"] == "refused"  # d's keys are in dispute: not used

    trusted = cli(r, "keys", "trust", d.name, "--relay", b.name)
    assert trusted.returncode == 0, trusted.stderr
    assert deliver(b, r, [later])[0]["status"] == "stored"
    assert deliver(m, r, [creation_as(m, d.name)])[0]["status"] == "refused"  # m disputes the trusted key
    assert [x["origin"] for x in admin_get(r, "/admin/keys/disputes")["disputes"]] == [d.name]
    assert deliver(b, r, [made_on(d)])[0]["status"] == "stored"  # the trusted key still verifies


def stolen(node: NodeProcess, key) -> dict:
    """A new creation signed with ``key`` (what a thief of a node's old key can make)."""
    gid = str(uuid.uuid4())
    tx = {"gid": gid, "entity": "item", "entity_gid": owned_entity_gid(node.name, gid), "kind": "item.created",
          "parents": [], "origin": node.name, "author": f"thief@{node.name}", "created_at": utc_now(),
          "scope": "NETWORK", "payload": factory.document("stolen", "x\n")}
    tx["checksum"] = checksum(tx["payload"])
    tx["signature"] = key.sign(signing_input(tx))
    return tx


def test_a_revoked_key_signs_nothing_new_and_what_it_signed_before_still_verifies(spawn: Spawner):
    a = spawn("a")
    b, c = spawn.many("b", "c", env={"FEDSYNC_KEY_REFRESH_INTERVAL": "0.5"})
    link(a, b)
    link(a, c)
    old_key = Keyring.load(a.settings.keys_dir).active
    before = made_on(a)
    time.sleep(0.05)
    since = utc_now()
    time.sleep(0.05)
    after = made_on(a)  # signed after the compromise time, accepted before anyone knew
    assert [r["status"] for r in deliver(a, b, [before, after])] == ["stored", "stored"]

    revoked = cli(a, "keys", "revoke", old_key.kid, "--compromised-since", since)
    assert revoked.returncode == 0, revoked.stderr
    revoked_at = time.monotonic()
    accepted_before_the_refresh: list[str] = []
    result = {"status": "not sent"}
    while time.monotonic() < revoked_at + 10:  # bounded
        tx = stolen(a, old_key)
        result = deliver(a, b, [tx])[0]
        if result["status"] != "stored":
            break
        accepted_before_the_refresh.append(tx["gid"])
        time.sleep(0.1)
    assert result["status"] == "refused" and "revoked" in result["reason"], result
    assert time.monotonic() - revoked_at < 0.5 + 3.0  # one refresh interval, and deliveries on a loaded machine

    # c never saw them: what the key signed before the compromise time still verifies, nothing after.
    while not c.query("SELECT kid FROM revoked_keys") and time.monotonic() < revoked_at + 10:
        time.sleep(0.1)
    outcomes = deliver(a, c, [before, after])
    assert outcomes[0]["status"] == "stored"
    assert outcomes[1]["status"] == "refused" and "revoked" in outcomes[1]["reason"]
    # b lists what it accepted, signed at or after the compromise time, before it learned of it.
    listed = admin_get(b, "/admin/keys/revocations")["revocations"]
    assert [(x["origin"], x["kid"], x["transactions"]) for x in listed] == \
        [(a.name, old_key.kid, [after["gid"], *accepted_before_the_refresh])]
    fresh = made_on(a)
    assert kid_of(fresh["signature"]) != old_key.kid  # a signs with its new key
    assert deliver(a, b, [fresh])[0]["status"] == "stored"
