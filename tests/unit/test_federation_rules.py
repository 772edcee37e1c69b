"""Pure federation rules: visibility per scope and share, backoff, circuit breaker."""

from __future__ import annotations

import pytest

from domain.federation import Audience, Breaker, backoff_delay, hostname, may_see
from infrastructure.domains import same_domain

OWN = "a.example.org"
PEER_SAME_DOMAIN = Audience("urn:domain:b.example.org")
PEER_ELSEWHERE = Audience("urn:domain:c.example.net")
ANONYMOUS = Audience(None)


@pytest.mark.parametrize("scope,audience,expected", [
    ("PUBLIC", ANONYMOUS, True),
    ("NETWORK", ANONYMOUS, False),
    ("NETWORK", PEER_ELSEWHERE, True),
    ("DOMAIN", PEER_SAME_DOMAIN, True),
    ("DOMAIN", PEER_ELSEWHERE, False),
    ("TEAM", PEER_SAME_DOMAIN, False),
    ("OWNER", PEER_SAME_DOMAIN, False),
])
def test_scope_decides_who_sees_an_unshared_item(scope, audience, expected):
    assert may_see("item", scope, (), OWN, audience, same_domain) is expected


def test_a_share_opens_an_owner_item_to_that_peer_only():
    shared = {"urn:domain:c.example.net"}

    assert may_see("item", "OWNER", shared, OWN, PEER_ELSEWHERE, same_domain)
    assert not may_see("item", "OWNER", shared, OWN, PEER_SAME_DOMAIN, same_domain)
    assert not may_see("item", "OWNER", shared, OWN, ANONYMOUS, same_domain)


def test_types_the_peering_does_not_send_are_never_visible():
    tags_only = Audience("urn:domain:c.example.net", ("tag",))

    assert not may_see("item", "PUBLIC", (), OWN, tags_only, same_domain)
    assert may_see("tag", "NETWORK", (), OWN, tags_only, same_domain)


def test_an_entity_unknown_to_the_read_models_is_not_visible():
    assert not may_see("item", None, (), OWN, PEER_ELSEWHERE, same_domain)


def test_domain_scope_uses_the_public_suffix_list():
    assert same_domain("a.example.org", "b.example.org")
    assert not same_domain("a.co.uk", "b.co.uk")
    assert same_domain(hostname("x.example.org:8443"), hostname("y.example.org"))
    assert not same_domain("127.0.0.1", "127.0.0.2")


def test_backoff_grows_exponentially_with_full_jitter_and_a_cap():
    assert backoff_delay(0, rand=lambda: 1.0) == pytest.approx(0.2)
    assert backoff_delay(3, rand=lambda: 1.0) == pytest.approx(1.6)
    assert backoff_delay(50, rand=lambda: 1.0) == 60.0
    assert backoff_delay(3, rand=lambda: 0.5) == pytest.approx(0.8)


def test_a_peer_that_keeps_failing_is_paused_then_probed_then_closed():
    breaker = Breaker()
    for _ in range(Breaker.THRESHOLD - 1):
        breaker = breaker.failed(now=100.0)
    assert breaker.state == "closed" and breaker.allows(100.0)

    breaker = breaker.failed(now=100.0)
    assert breaker.state == "open"
    assert not breaker.allows(101.0)
    assert breaker.allows(100.0 + Breaker.COOL_DOWN)

    probe = breaker.probing(100.0 + Breaker.COOL_DOWN)
    assert probe.state == "half-open"
    reopened = probe.failed(now=106.0)
    assert reopened.state == "open" and reopened.open_until > 106.0 + Breaker.COOL_DOWN
    assert probe.succeeded().state == "closed"
