"""Requests without valid credentials have a budget per client; authenticated work is never charged."""

from __future__ import annotations

import warnings

import pytest

from api.app import create_app
from api.rate_limit import TokenBuckets, client_key
from infrastructure.node import Node
from tests.api.conftest import is_problem

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_holds_its_burst_and_refills_at_its_rate():
    clock = Clock()
    buckets = TokenBuckets(rate=2, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(4)] == [True, True, True, False]
    assert buckets.take("b")  # another client, another bucket
    assert buckets.wait("a") == 1
    clock.now = 0.5  # one token back
    assert buckets.take("a") and not buckets.take("a")
    clock.now = 100.0  # never more than the burst
    assert [buckets.take("a") for _ in range(4)] == [True, True, True, False]


def test_a_token_given_back_can_be_taken_again_but_never_past_the_burst():
    clock = Clock()
    buckets = TokenBuckets(rate=1, burst=2, clock=clock)
    assert buckets.take("a") and buckets.take("a") and not buckets.take("a")
    buckets.give_back("a")
    assert buckets.take("a") and not buckets.take("a")
    buckets.give_back("a")
    buckets.give_back("a")
    buckets.give_back("a")
    assert [buckets.take("a") for _ in range(3)] == [True, True, False]


def test_the_least_recently_seen_client_is_forgotten_first():
    clock = Clock()
    buckets = TokenBuckets(rate=0.001, burst=1, size=2, clock=clock)
    assert buckets.take("a") and not buckets.take("a")
    assert buckets.take("b") and buckets.take("c")  # three clients, room for two: "a" is forgotten
    assert buckets.take("a")  # a full bucket again
    assert not buckets.take("c")


@pytest.mark.parametrize("host,key", [
    ("192.0.2.7", "192.0.2.7"),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),  # the same /64: one client
])
def test_clients_are_addresses_and_ipv6_clients_their_64_prefix(host, key):
    assert client_key({"client": (host, 4711)}) == key


@pytest.fixture
def limited(node: Node):
    settings = node.settings.model_copy(update={"anonymous_rate": 0.001, "anonymous_burst": 5})
    client = TestClient(create_app(settings, node), raise_server_exceptions=False)
    yield client
    client.close()


def test_anonymous_requests_past_the_burst_get_429_with_retry_after(limited):
    statuses = [limited.get("/federation/outbox").status_code for _ in range(7)]
    assert statuses == [200] * 5 + [429] * 2
    refused = limited.get("/.well-known/fedsync")
    assert is_problem(refused, 429)
    assert refused.json()["type"].endswith("rate-limited")
    assert int(refused.headers["retry-after"]) >= 1


def test_failed_authentication_is_charged_and_then_refused_before_any_work(limited, node: Node):
    bogus = {"Authorization": "Bearer not.a.token"}
    statuses = [limited.get("/items", headers=bogus).status_code for _ in range(7)]
    assert statuses == [401] * 5 + [429] * 2
    fresh = {"Authorization": f"Bearer {node.tokens.issue('new')}"}
    assert limited.get("/items", headers=fresh).status_code == 429  # unknown here yet: waits like any other


def test_an_editor_known_here_keeps_working_while_its_address_is_throttled(limited, node: Node):
    editor = {"Authorization": f"Bearer {node.tokens.issue('ann')}"}
    assert limited.get("/items", headers=editor).status_code == 200  # verified once, remembered
    for _ in range(6):
        limited.get("/federation/outbox")
    assert limited.get("/federation/outbox").status_code == 429
    answers = [limited.get("/items", headers=editor).status_code for _ in range(20)]
    assert answers == [200] * 20  # authenticated work is never charged nor refused
    created = limited.post("/items", json={"title": "t", "markdown": "m\n"}, headers=editor)
    assert created.status_code == 201


def test_a_refused_request_changes_nothing(limited, node: Node):
    for _ in range(5):
        limited.get("/federation/outbox")
    before = node.app.recorder.max_notification_id()
    response = limited.post("/federation/inbox", json=[], headers={"Authorization": "Bearer x.y.z"})
    assert response.status_code == 429 and response.headers["connection"] == "close"
    assert node.app.recorder.max_notification_id() == before


def test_a_rate_of_zero_turns_the_budget_off(node: Node):
    settings = node.settings.model_copy(update={"anonymous_rate": 0, "anonymous_burst": 1})
    client = TestClient(create_app(settings, node), raise_server_exceptions=False)
    try:
        assert {client.get("/federation/outbox").status_code for _ in range(10)} == {200}
    finally:
        client.close()
