"""Abuse that piled work up on a node (issue 12, findings 4 and 5): the pending area and a stalled outbox.

The node is opened in the test process on its real store (``spawn`` with
``start=False``); the hostile peer of finding 5 is a real HTTP server.
"""

from __future__ import annotations

import uuid
from typing import Any

from domain.errors import BatchRefused
from domain.transaction import owned_entity_gid, utc_now
from infrastructure.federation_client import PeerError
from infrastructure.node import Node
from infrastructure.peers import Peer
from infrastructure.settings import Settings
from tests import factory
from tests.e2e import conftest as e2e
from tests.e2e.conftest import Spawner
from tests.reliability.hostile_peer import HostilePeer

spawn = e2e.spawn  # the fixture: nodes on the test's store
UNREACHABLE = "http://127.0.0.1:9"  # ancestor fetches fail at once: orphans stay held


def orphan(sender: factory.SigningPeer) -> dict[str, Any]:
    """An edit of an item nobody has: held for its missing parent."""
    gid = str(uuid.uuid4())
    base = {"gid": gid, "entity_gid": owned_entity_gid(sender.name, gid), "scope": "NETWORK",
            "payload": factory.document("junk", "junk\n")}
    return sender.edit(base, markdown="orphan\n")


def receive(node: Node, sender: factory.SigningPeer, txs: list[dict[str, Any]]) -> tuple[int, list[str]]:
    """(status, per-transaction statuses) of an inbox batch, as the route answers it."""
    try:
        return 200, [r["status"] for r in node.federation.inbox(sender.name, txs)]
    except BatchRefused as e:
        return e.status, [r["status"] for r in e.extra["results"]]


def test_one_senders_orphans_are_capped_and_never_hide_an_honest_held_transaction(spawn: Spawner):
    """Finding 4: the pending area had no bound, and retries looked only at the 1000 oldest rows."""
    process = spawn("c", start=False)
    node = Node.open(Settings(data_dir=process.data_dir, database_url=process.database_url,
                              pending_max_per_sender=1000))
    try:
        junk, honest = factory.SigningPeer("junk.example.net"), factory.SigningPeer("honest.example.net")
        factory.trust(node, junk, honest)
        for sender in (junk, honest):
            node.peers.add(Peer(name=sender.name, base_url=UNREACHABLE, send_types=("item",),
                                accept_types=("item",), created_at=utc_now()))
        first = receive(node, junk, [orphan(junk) for _ in range(1000)])  # fills its room exactly
        parent = honest.create_item("honest", "x\n")
        child = honest.edit(parent, markdown="y\n")
        held = receive(node, honest, [child])
        later = [receive(node, junk, [orphan(junk) for _ in range(50)]) for _ in range(4)]
        junk_held = process.query("SELECT COUNT(*) AS n FROM pending WHERE sender = ?", (junk.name,))[0]["n"]
        settled = receive(node, honest, [parent])
        node.federation.retry_pending()  # what each pull round of `fedsync serve` does
        stored = node.app.transactions([child["gid"]])
    finally:
        node.close()

    assert first[1] == ["pending"] * 1000
    assert held[1] == ["pending"]
    assert [status for status, _ in later] == [429] * 4  # at its cap: further orphans refused
    assert junk_held == 1000
    assert settled[1] == ["stored"]
    assert child["gid"] in stored, "the honest held transaction was never settled"


def test_an_outbox_that_cycles_its_cursor_with_more_opens_the_breaker_after_a_few_requests(spawn: Spawner):
    """Finding 5: an outbox answering `more: true` without advancing kept the puller asking thousands of times."""
    cursors = [str(uuid.uuid4()), str(uuid.uuid4())]

    def outbox(n: int, after: str | None) -> dict[str, Any] | None:
        if n > 300:  # the test's bound: the old puller would ask up to 100,000 pages
            return None
        return {"transactions": [], "last": cursors[n % 2], "more": True}

    process = spawn("c", start=False)
    node = process.admin()
    with HostilePeer(outbox=outbox) as hostile:
        try:
            node.add_peer(hostile.base_url, ("item",), ("item",))
            try:
                node.syncer.pull(hostile.name)
                raised = None
            except PeerError as e:
                raised = e
            asked = hostile.hits["/federation/outbox"]
            peer = node.peers.get(hostile.name)
        finally:
            node.close()

    assert asked <= 5, f"the stalled outbox was asked {asked} times in one pull"
    assert raised is None
    assert peer.last_error and "cursor" in peer.last_error
    assert peer.last_success is None
