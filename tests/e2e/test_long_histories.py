"""Histories longer than one fetch, on real ``fedsync serve`` processes and both stores: an item of 20,000
transactions, held back from a platform by its tag filter, reaches it through the hub whole once it is tagged
(pushed, then its history fetched),
though a fetch with ancestors answers at most 5,000 transactions: the platform says which of the item's
transactions it holds (``have``), and the hub answers with the next part."""

from __future__ import annotations

import time

import pytest

from infrastructure.local_cluster import NodeProcess
from infrastructure.outbox import FETCH_MAX
from tests.e2e.conftest import Spawner, link
from tests.e2e.test_federation import pull
from tests.e2e.test_subscription_filters import subscribe
from tests.factory import SigningPeer

LENGTH = 20_000


def pin(node: NodeProcess, origin: SigningPeer) -> None:
    admin = node.admin()
    try:
        admin.keys.pin(origin.name, origin.jwks)
    finally:
        admin.close()


def stored(node: NodeProcess, entity_gid: str) -> int:
    return node.query("SELECT COUNT(*) AS n FROM transactions WHERE entity_gid = ?", (entity_gid,))[0]["n"]


@pytest.mark.slow(25)
def test_an_item_of_twenty_thousand_transactions_reaches_a_filtered_platform_through_the_hub(
        spawn: Spawner) -> None:
    hub, platform = spawn.many("hub", "platform")
    link(hub, platform)
    origin = SigningPeer(host="school.example.org")  # a platform behind the hub, signing its own
    for node in (hub, platform):
        pin(node, origin)
    tag = origin.create_tag("wiskunde")
    head = origin.create_item("Lang verhaal", "0\n")
    txs = [tag, head]
    for n in range(1, LENGTH):
        head = origin.edit(head, markdown=f"{n}\n")
        txs.append(head)
    tagged = origin.edit(head, tags=[tag["entity_gid"]])
    assert LENGTH > 3 * FETCH_MAX
    subscribe(platform, hub, ["wiskunde"])
    admin = hub.admin()
    try:
        for i in range(0, len(txs), 1000):
            assert {o.status for o in admin.app.receive(txs[i:i + 1000])} == {"stored"}
        pull(platform, hub)
        assert stored(platform, head["entity_gid"]) == 0  # untagged: held back by the filter
        assert {o.status for o in admin.app.receive([tagged])} == {"stored"}
    finally:
        admin.close()

    # The hub pushes the tagged edit; the platform holds it and fetches its history from the hub, a part a round
    deadline = time.monotonic() + 120
    while stored(platform, head["entity_gid"]) < LENGTH + 1 and time.monotonic() < deadline:  # bounded
        time.sleep(0.5)

    assert stored(platform, head["entity_gid"]) == LENGTH + 1, platform.log()
    assert platform.query("SELECT head, markdown FROM documents WHERE item_gid = ?", (head["entity_gid"],)) == [
        {"head": tagged["gid"], "markdown": f"{LENGTH - 1}\n"}]
    assert platform.query("SELECT COUNT(*) AS n FROM pending")[0]["n"] == 0
    pull(platform, hub)  # and a pull finds nothing more
    assert stored(platform, head["entity_gid"]) == LENGTH + 1
