"""Subscription filters on real ``fedsync serve`` processes, on both stores: a platform subscribed to the hub's
tag ``wiskunde`` receives exactly the items so tagged, by push and by pull, including one tagged later with its
whole history; a subscription without a filter still gets everything."""

from __future__ import annotations

import time
from typing import Any

import pytest

from infrastructure.local_cluster import NodeProcess
from tests.e2e.conftest import Spawner, link
from tests.e2e.test_conflicts_e2e import editor, ok
from tests.e2e.test_federation import pull


def titles_on(node: NodeProcess) -> list[str]:
    with editor(node, "ed") as ed:
        return sorted(item["title"] for item in ok(ed.get("/items", params={"limit": 200}))["items"])


def history_on(node: NodeProcess, gid: str) -> list[str]:
    with editor(node, "ed") as ed:
        return [n["gid"] for n in ok(ed.get(f"/items/{gid}/history"))["nodes"]]


def subscribe(subscriber: NodeProcess, source: NodeProcess, tags: list[str]) -> dict[str, Any]:
    admin = subscriber.admin()
    try:
        admin.subscribe_to(source.name, tags)
    finally:
        admin.close()
    return {}


def until(check: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # bounded
        if check():
            return
        time.sleep(0.2)
    assert check()


@pytest.mark.slow(25)
def test_a_platform_subscribed_to_a_tag_receives_exactly_those_items_with_their_histories(spawn: Spawner) -> None:
    hub, platform, other = spawn.many("hub", "platform", "other")
    link(hub, platform)
    link(hub, other)
    with editor(hub, "ann") as ann:
        wiskunde, taal = (ok(ann.post("/tags", json={"name": name}), 201)["gid"] for name in ("wiskunde", "taal"))
        ok(ann.post("/items", json={"title": "Breuken", "markdown": "1/2\n", "tags": [wiskunde]}), 201)
        ok(ann.post("/items", json={"title": "Spelling", "markdown": "dt\n", "tags": [taal]}), 201)
        later = ok(ann.post("/items", json={"title": "Meten", "markdown": "cm\n"}), 201)
        for n in range(3):  # a history the filter holds back, until the item is tagged
            later = ok(ann.patch(f"/items/{later['gid']}", headers={"If-Match": f'"{later["head"]}"'},
                                 json={"markdown": f"cm {n}\n"}))
    subscribe(platform, hub, ["Wiskunde"])  # names are case folded
    subscribe(other, hub, [])

    pull(platform, hub)  # the pull is filtered as the pushes are
    assert titles_on(platform) == ["Breuken"]
    with editor(hub, "ann") as ann:
        ok(ann.patch(f"/items/{later['gid']}", headers={"If-Match": f'"{later["head"]}"'},
                     json={"tags": [wiskunde]}))
        ok(ann.post("/items", json={"title": "Taal 2", "markdown": "x\n", "tags": [taal]}), 201)

    until(lambda: titles_on(platform) == ["Breuken", "Meten"])  # pushed, with its history
    assert history_on(platform, later["gid"]) == history_on(hub, later["gid"])
    assert len(history_on(hub, later["gid"])) == 5
    pull(platform, hub)
    assert titles_on(platform) == ["Breuken", "Meten"]  # nothing else, pulled or pushed
    until(lambda: titles_on(other) == ["Breuken", "Meten", "Spelling", "Taal 2"])  # no filter: every item
