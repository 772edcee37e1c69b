"""Federation between real ``fedsync serve`` processes on 127.0.0.1 (both stores)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from infrastructure.local_cluster import NodeProcess
from infrastructure.outbox import OUTBOX_COUNT
from infrastructure.signing import Keyring, kid_of
from infrastructure.sync_workers import SyncWorkers
from tests import factory
from tests.e2e.conftest import link
from tests.forkserver import fedsync

VIEWS = {"documents": "item_gid", "tags": "tag_gid", "shares": "share_gid"}


def wait_until(check: Callable[[], bool], timeout: float = 60.0, what: str = "condition",
               poll: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # bounded
        if check():
            return
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")


def make_changes(node: NodeProcess, count: int, *, scope: str = "NETWORK", share_with: str | None = None) -> list[str]:
    """About ``count`` transactions on a node: items, edits, tags, shares, forks. Returns item gids."""
    admin = node.admin()
    author = factory.author(admin.name)
    items: list[str] = []
    made = 0
    try:
        tag = admin.app.create_tag(author=author, name=f"tag-{scope.lower()}")
        made += 1
        while made < count:
            r = admin.app.create_item(author=author, title=f"item {made}", markdown="one\n", tags=[tag.entity_gid],
                                      scope=scope)
            items.append(r.entity_gid)
            head = r.gid
            for i in range(min(6, count - made - 1)):
                head = admin.app.edit_item(r.entity_gid, parent=head, author=author, markdown=f"edit {i}\n").gid
                made += 1
            made += 1
            if share_with and made < count:
                admin.app.grant_share(author=author, item_gid=r.entity_gid, peer=share_with, permission="read")
                made += 1
            if len(items) % 5 == 0 and made < count:
                admin.app.fork_item([r.entity_gid], author=author)
                made += 1
    finally:
        admin.close()
    return items


def outbox(node: NodeProcess) -> list[dict]:
    return node.query("SELECT gid, origin FROM transactions ORDER BY seq")


def views(node: NodeProcess, where: str = "") -> dict[str, list[dict]]:
    return {t: node.query(f"SELECT * FROM {t} {where} ORDER BY {k}") for t, k in VIEWS.items()}


def without_seq(rows: dict[str, list[dict]]) -> dict[str, list[dict]]:
    return {t: [{k: v for k, v in r.items() if k != "seq"} for r in rs] for t, rs in rows.items()}


def pull(node: NodeProcess, source: NodeProcess):
    admin = node.admin()
    try:
        return admin.syncer.pull(source.name)
    finally:
        admin.close()


def subscribe(subscriber: NodeProcess, source: NodeProcess) -> None:
    admin = subscriber.admin()
    try:
        admin.subscribe_to(source.name)
    finally:
        admin.close()


@pytest.mark.slow
def test_pull_only_brings_a_thousand_transactions_and_a_second_pull_brings_nothing(spawn):
    a, b = spawn.many("a", "b")
    link(a, b)
    make_changes(a, 1000, share_with=b.name)

    first = pull(b, a)
    second = pull(b, a)

    assert first.stored == len(outbox(a)) >= 1000
    assert second.received == 0 and second.stored == 0
    assert without_seq(views(b)) == without_seq(views(a))
    assert [r["gid"] for r in outbox(b)] == [r["gid"] for r in outbox(a)]


@pytest.mark.slow
def test_a_hub_relays_by_push_then_by_pull_then_mixed_exactly_once(spawn):
    a, hub, c = spawn.many("a", "hub", "c")
    link(a, hub)
    link(hub, c)
    subscribe(hub, a)
    subscribe(c, hub)

    make_changes(a, 60)
    wait_until(lambda: len(outbox(c)) == len(outbox(a)), what="push relay to c")
    for subscriber, source in ((hub, a), (c, hub)):
        admin = subscriber.admin()
        admin.client.http.delete(f"{source.base_url}/federation/subscriptions",
                                 headers={"Authorization": f"Bearer {admin.client.token_for(source.name)}"})
        admin.close()
    make_changes(a, 40)
    pull(hub, a)
    pull(c, hub)
    subscribe(c, hub)
    make_changes(a, 30)
    pull(hub, a)
    wait_until(lambda: len(outbox(c)) == len(outbox(a)), what="mixed relay to c")
    pull(c, hub)

    gids_c = [r["gid"] for r in outbox(c)]
    assert len(gids_c) == len(set(gids_c)) == len(outbox(a))
    admin_a, admin_c = a.admin(), c.admin()
    try:
        originals = admin_a.app.transactions(gids_c)
        relayed = admin_c.app.transactions(gids_c)
    finally:
        admin_a.close()
        admin_c.close()
    assert relayed == originals  # A's own signatures, byte for byte


@pytest.mark.slow
def test_mutual_subscriptions_in_a_ring_store_each_transaction_once_and_go_quiet(spawn):
    a, b, c = spawn.many("a", "b", "c")
    link(a, b)
    link(b, c)
    link(c, a)
    subscribe(b, a)
    subscribe(c, b)
    subscribe(a, c)

    make_changes(a, 40)
    make_changes(c, 20)
    wait_until(lambda: all(len(outbox(n)) == 60 for n in (a, b, c)), what="ring convergence")
    time.sleep(2.0)

    for node in (a, b, c):
        gids = [r["gid"] for r in outbox(node)]
        assert len(gids) == len(set(gids)) == 60
        queued = node.query("SELECT name, push_after FROM peers WHERE subscribed = 1")
        last = node.query("SELECT MAX(seq) AS m FROM transactions")[0]["m"]
        assert all(row["push_after"] == last for row in queued), (node.name, queued, last)


def test_a_subscriber_that_was_down_catches_up_by_push_retries_alone(spawn):
    a = spawn("a", env={"FEDSYNC_RETRY_CAP": "1"}, start=False)
    b = spawn("b", start=False)
    spawn.start(a, b)
    link(a, b)
    subscribe(b, a)
    b.stop()

    make_changes(a, 500)
    time.sleep(1.0)  # a's pusher fails against the stopped b and backs off
    b.start()

    wait_until(lambda: len(outbox(b)) == len(outbox(a)), timeout=90, what="b catching up by push")
    gids = [r["gid"] for r in outbox(b)]
    assert len(gids) == len(set(gids)) == len(outbox(a))
    assert a.query("SELECT last_error FROM peers")[0]["last_error"]  # it did fail meanwhile


@pytest.mark.slow
def test_killing_the_pusher_mid_batch_loses_nothing_and_duplicates_nothing(spawn):
    a = spawn("a", env={"FEDSYNC_RETRY_CAP": "1"}, start=False)
    b = spawn("b", start=False)
    spawn.start(a, b)
    link(a, b)
    b.stop()
    subscribe_while_down = a.admin()
    subscribe_while_down.peers.subscribe(b.name)  # as if b had subscribed before going down
    subscribe_while_down.close()
    make_changes(a, 2000)
    b.start()

    wait_until(lambda: b.query("SELECT COUNT(*) AS n FROM tx_index")[0]["n"] > 0, timeout=60,
               what="the first push batch", poll=0.005)
    a.kill()  # SIGKILL while batches are still going out
    partial = len(outbox(b))
    a.start()

    wait_until(lambda: len(outbox(b)) == len(outbox(a)), timeout=120, what="b complete after a restarted")
    gids = [r["gid"] for r in outbox(b)]
    assert partial < len(outbox(a))
    assert len(gids) == len(set(gids)) == len(outbox(a))


def test_a_push_says_whether_the_subscribers_outbox_holds_more_than_it_took(spawn):
    # The pusher goes again at once only while a batch did not take everything (``Pushed.more``).
    a, b = spawn.many("a", "b")
    link(a, b)
    a.stop()  # its own pusher would race the pushes below
    make_changes(a, 1100)
    admin = a.admin()
    try:
        admin.peers.subscribe(b.name)
        read_before = admin.peers.get(b.name)  # as the push loop read it, before the pushes below
        pushes = [admin.syncer.push(b.name) for _ in range(4)]
        SyncWorkers(admin.syncer)._push_to(read_before)  # a round with a stale record sends nothing again
        sent_in_all = admin.syncer.sent[b.name]
    finally:
        admin.close()

    assert [p.more for p in pushes] == [True, True, False, False]
    assert [p.sent for p in pushes][:2] == [OUTBOX_COUNT, OUTBOX_COUNT] and pushes[3].sent == 0
    assert sum(p.sent for p in pushes) == sent_in_all == len(outbox(a)) == len(outbox(b))


def test_missing_ancestors_are_fetched_from_the_sender(spawn):
    a, c = spawn.many("a", "c")
    link(a, c)
    admin = a.admin()
    author = factory.author(admin.name)
    r = admin.app.create_item(author=author, title="t", markdown="1\n")
    e1 = admin.app.edit_item(r.entity_gid, parent=r.gid, author=author, markdown="2\n")
    e2 = admin.app.edit_item(r.entity_gid, parent=e1.gid, author=author, markdown="3\n")
    edit = admin.app.transaction(e2.gid)

    result = admin.client.deliver(c.name, c.base_url, [edit])
    admin.close()

    assert result["results"] == [{"gid": e2.gid, "status": "stored"}]
    assert [row["gid"] for row in outbox(c)] == [r.gid, e1.gid, e2.gid]


def test_an_edit_whose_sender_lacks_the_parents_waits_in_pending_until_they_arrive(spawn):
    a, hub, c = spawn.many("a", "hub", "c")
    link(a, c)
    link(hub, c)
    admin = a.admin()
    author = factory.author(admin.name)
    r = admin.app.create_item(author=author, title="t", markdown="1\n")
    e1 = admin.app.edit_item(r.entity_gid, parent=r.gid, author=author, markdown="2\n")
    edit = admin.app.transaction(e1.gid)
    admin.close()
    relay = hub.admin()

    result = relay.client.deliver(c.name, c.base_url, [edit])  # the hub relays what it cannot back up
    relay.close()
    held = c.query("SELECT gid FROM pending")
    pull(c, a)  # the parents arrive by another route

    assert result["results"][0]["status"] == "pending"
    assert held == [{"gid": e1.gid}]
    assert c.query("SELECT gid FROM pending") == []
    assert {row["gid"] for row in outbox(c)} == {r.gid, e1.gid}


def test_keys_rotated_while_serving_sign_at_once_and_peers_learn_them(spawn):
    a, b = spawn.many("a", "b")
    link(a, b)
    token = a.token(factory.EDITOR)
    with httpx.Client(base_url=a.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
        created = api.post("/items", json={"title": "t", "markdown": "one\n"})
        assert created.status_code == 201, created.text
        old_kid = Keyring.load(a.settings.keys_dir).active.kid

        rotated = fedsync("keys", "rotate", "--data-dir", str(a.data_dir), timeout=60)
        assert rotated.returncode == 0, rotated.stderr
        new_kid = Keyring.load(a.settings.keys_dir).active.kid
        signed_out = api.get("/items")  # a rotation signs every editor out (docs/api.md)
        edited = api.patch(f"/items/{created.json()['gid']}", json={"markdown": "two\n"},
                           headers={"If-Match": created.headers["ETag"],
                                    "Authorization": f"Bearer {a.token(factory.EDITOR)}"})
        assert signed_out.status_code == 401, signed_out.text
        assert edited.status_code == 200, edited.text
        jwks = {k["kid"]: k["status"] for k in httpx.get(f"{a.base_url}/.well-known/jwks.json").json()["keys"]}

    assert new_kid != old_kid and jwks == {new_kid: "active", old_kid: "retired"}
    admin = a.admin()
    try:
        signature = admin.app.transaction(edited.json()["head"])["signature"]
    finally:
        admin.close()
    assert kid_of(signature) == new_kid  # the running node signed with the new key, no restart
    assert pull(b, a).stored == 2  # B pinned only the old key: it refreshed A's JWKS on the new kid
    assert [r["gid"] for r in outbox(b)] == [r["gid"] for r in outbox(a)]
