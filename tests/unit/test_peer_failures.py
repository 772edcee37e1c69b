"""After a failed exchange with a peer: when to try again and the breaker's state."""

from __future__ import annotations

from domain.federation import Breaker, after_failure

NOW = 1000.0


def test_a_failure_waits_a_jittered_backoff():
    breaker, next_attempt = after_failure(Breaker(), 3, NOW, retry_after=None, cap=60.0, rand=lambda: 0.5)

    assert breaker == Breaker("closed", 1, 0.0)
    assert next_attempt == NOW + 0.5 * 0.2 * 2**3


def test_retry_after_from_the_peer_replaces_the_backoff():
    _, next_attempt = after_failure(Breaker(), 3, NOW, retry_after=7.0, cap=60.0, rand=lambda: 0.5)

    assert next_attempt == NOW + 7.0


def test_no_attempt_before_an_opened_breaker_cools_down():
    breaker, next_attempt = after_failure(Breaker("closed", Breaker.THRESHOLD - 1), 0, NOW, retry_after=None,
                                          cap=60.0, rand=lambda: 0.0)

    assert breaker.state == "open"
    assert next_attempt == breaker.open_until > NOW
