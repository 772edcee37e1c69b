"""Webhooks of a real ``fedsync serve`` process: a conflict made over HTTP between two linked nodes reaches a
receiver registered on one of them, signed with its secret, and the admin API shows the delivery."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import Spawner, link
from tests.e2e.test_conflicts_e2e import BASE_MARKDOWN, editor, ok
from tests.e2e.test_federation import pull
from tests.webhook_receiver import receiving


@pytest.mark.slow(20)
def test_a_conflict_between_two_nodes_is_posted_to_the_webhook_signed_and_shown_delivered(spawn: Spawner) -> None:
    a, b = spawn.many("a", "b")
    link(a, b)
    with receiving([500]) as receiver, editor(a, "root", role="admin") as root, editor(a, "ann") as ann, \
            editor(b, "bo") as bo:
        webhook = ok(root.post("/admin/webhooks", json={"url": receiver.url}), 201)
        item = ok(ann.post("/items", json={"title": "Field trip", "markdown": BASE_MARKDOWN}), 201)
        pull(b, a)
        head = {"If-Match": f'"{item["head"]}"'}
        ok(ann.patch(f"/items/{item['gid']}", headers=head, json={"markdown": BASE_MARKDOWN + "by ann\n"}))
        ok(bo.patch(f"/items/{item['gid']}", headers=head, json={"markdown": BASE_MARKDOWN + "by bo\n"}))
        pull(a, b)  # the second head reaches a: a's worker finds it within its poll (the pull ran in this process)
        started = time.monotonic()
        arrived = receiver.wait_for(lambda: bool(receiver.accepted), timeout=15)
        waited = time.monotonic() - started
        # the receiver has the body before the node has its answer: the status follows at once after
        receiver.wait_for(lambda: ok(root.get("/admin/webhooks"))["webhooks"][0]["delivered"] > 0, timeout=5)
        status = ok(root.get("/admin/webhooks"))["webhooks"]

    assert arrived, receiver.received
    assert [r.status for r in receiver.received] == [500, 200]  # the failed attempt was retried
    accepted = receiver.accepted[0]
    assert accepted.signed_with(webhook["secret"]) and accepted.headers["x-fedsync-node"] == a.name
    kinds = {(n["kind"], n["item"]) for n in accepted.notices}
    assert kinds == {("conflict.opened", item["gid"]), ("item.edited", item["gid"])}
    assert waited < 5  # a 1 s poll, then a 1 s backoff
    [shown] = status
    assert shown["id"] == webhook["id"] and "secret" not in shown
    assert shown["delivered"] == len(accepted.notices) and shown["last_success"] and shown["attempts"] == 0
    assert shown["last_error"].endswith("HTTP 500")
