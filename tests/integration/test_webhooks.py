"""Webhook delivery on real stores (SQLite and PostgreSQL) to a real HTTP receiver on 127.0.0.1.

The sender's steps are run by the test (no worker thread), with the backoff made small through its
parameters, so retries are checked without long sleeps.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from infrastructure.local_cluster import free_port
from infrastructure.node import Node
from infrastructure.webhook_delivery import WebhookSender, WebhookWorker
from infrastructure.webhooks import check_url, event_kinds
from tests.factory import AUTHOR, SigningPeer
from tests.webhook_receiver import Receiver, receiving


def conflict(node: Node, peer: SigningPeer) -> str:
    """An item from the peer, edited here and there from the same head: two heads. Its gid."""
    root = peer.create_item("Field trip")
    node.app.receive_one(root)
    node.app.edit_item(root["entity_gid"], parent=root["gid"], author=AUTHOR, markdown="local\n")
    node.app.receive_one(peer.edit(root, markdown="remote\n"))
    return root["entity_gid"]


def sender(node: Node, **kwargs: Any) -> WebhookSender:
    return WebhookSender(node.webhooks, node.db, node.name, retry_base=0.05, retry_cap=0.2, timeout=2.0, **kwargs)


def run_until(send: WebhookSender, done: Any, rounds: int = 100) -> None:
    """Steps for every due webhook until ``done()``, at most ``rounds`` rounds 20 ms apart."""
    worker = WebhookWorker(send)
    for _ in range(rounds):
        if done():
            return
        worker.round()
        time.sleep(0.02)


def test_a_conflict_is_posted_once_signed_with_the_webhooks_secret(node: Node, peer: SigningPeer) -> None:
    with receiving() as receiver:
        webhook = node.webhooks.add(receiver.url, "conflict.opened")
        item = conflict(node, peer)
        send = sender(node)

        moved = send.step(node.webhooks.get(webhook.id))
        again = send.step(node.webhooks.get(webhook.id))

    [got] = receiver.received
    assert moved and not again
    assert got.signed_with(webhook.secret) and not got.signed_with("another secret")
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-fedsync-node"] == node.name and got.headers["x-fedsync-delivery"]
    assert {n["kind"] for n in got.notices} == {"conflict.opened"} and {n["item"] for n in got.notices} == {item}
    assert len(got.notices[0]["heads"]) == 2
    status = node.webhooks.get(webhook.id)
    assert (status.delivered, status.attempts, status.last_error) == (len(got.notices), 0, None)
    assert status.last_success is not None


def test_a_receiver_failing_twice_gets_the_same_notices_again_and_then_no_more(node: Node,
                                                                               peer: SigningPeer) -> None:
    with receiving([500, 503]) as receiver:
        webhook = node.webhooks.add(receiver.url)
        conflict(node, peer)
        send = sender(node)

        send.step(node.webhooks.get(webhook.id))
        failed = node.webhooks.get(webhook.id)
        run_until(send, lambda: receiver.accepted)
        run_until(send, lambda: False, rounds=10)  # nothing more to send

    assert [r.status for r in receiver.received] == [500, 503, 200]
    assert receiver.received[0].notices == receiver.received[1].notices == receiver.received[2].notices
    assert len({r.headers["x-fedsync-delivery"] for r in receiver.received}) == 3
    assert (failed.attempts, failed.last_error.split()[1:], failed.position) == (1, ["HTTP", "500"], webhook.position)
    assert failed.next_attempt > time.time() - 1
    done = node.webhooks.get(webhook.id)
    assert done.attempts == 0 and "HTTP 503" in (done.last_error or "")
    assert done.delivered == len(receiver.received[2].notices) and done.position > webhook.position


def test_an_unreachable_receiver_is_recorded_and_retried_later(node: Node, peer: SigningPeer) -> None:
    webhook = node.webhooks.add(f"http://127.0.0.1:{free_port()}/hook")
    conflict(node, peer)
    send = sender(node, clock=lambda: 1000.0, rand=lambda: 1.0)

    send.step(node.webhooks.get(webhook.id))
    send.step(node.webhooks.get(webhook.id))

    status = node.webhooks.get(webhook.id)
    assert status.attempts == 2 and "ConnectError" in (status.last_error or "")
    assert status.next_attempt == 1000.0 + 0.1  # 0.05 s, doubled once
    assert not send.due(status) and status.position == webhook.position


def test_a_webhook_is_told_only_what_happens_after_it_was_added_and_only_its_kinds(node: Node,
                                                                                  peer: SigningPeer) -> None:
    conflict(node, peer)
    with receiving() as receiver:
        shared_only = node.webhooks.add(receiver.url, ["item.shared"])
        every = node.webhooks.add(receiver.url)
        later = conflict(node, peer)
        send = sender(node)

        run_until(send, lambda: False, rounds=5)

    assert {n["item"] for r in receiver.received for n in r.notices} == {later}
    assert len(receiver.received) == 1
    end = node.webhooks.get(every.id).position
    assert node.webhooks.get(shared_only.id).position == end and node.webhooks.get(shared_only.id).delivered == 0


def test_a_slow_receiver_times_out_without_holding_the_others_back(node: Node, peer: SigningPeer) -> None:
    slow = Receiver()  # listens but never answers: its server thread is not started
    with receiving() as fast:
        stuck = node.webhooks.add(slow.url)
        ok = node.webhooks.add(fast.url)
        conflict(node, peer)
        send = WebhookSender(node.webhooks, node.db, node.name, timeout=0.5, retry_base=60)
        started = time.monotonic()

        WebhookWorker(send).round()

    slow.server.server_close()
    assert time.monotonic() - started < 5
    assert "Timeout" in (node.webhooks.get(stuck.id).last_error or "")
    assert len(fast.received) == 1 and node.webhooks.get(ok.id).delivered > 0


@pytest.mark.parametrize("url", ["ftp://example.org/x", "http://", "example.org/hook", "http://exa mple.org/",
                                 "http://example.org:port/"])
def test_a_webhook_url_must_be_http_with_a_host(url: str) -> None:
    with pytest.raises(ValueError, match="URL"):
        check_url(url)


def test_event_kinds_default_to_every_kind_and_refuse_unknown_ones() -> None:
    assert event_kinds(None) == event_kinds("") == ("conflict.opened", "item.edited", "item.shared")
    assert event_kinds("item.shared, conflict.opened") == ("conflict.opened", "item.shared")
    with pytest.raises(ValueError, match="item.deleted"):
        event_kinds("conflict.opened,item.deleted")
