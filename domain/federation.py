"""Federation rules, free of I/O (like h11): what a peer may see, batch sizes,
retry timing and the per-peer circuit breaker.

- Visibility belongs to the entity, not to single transactions: an item is
  visible to a peer when its effective scope allows it (``PUBLIC`` and
  ``NETWORK`` to every peer, ``DOMAIN`` to peers of the same registrable
  domain), when a live share names that peer, when that peer is the item's
  owner (the owner sees everything about its items: share holders' edits
  reach it), or when the item has live shares and the peer is a relay (a hub
  that carries shared items to their recipients and owners, showing them to
  none of its own editors); then its whole history is. ``OWNER`` and
  ``TEAM`` items never leave the node otherwise.
- A tag follows its own scope. A share is sent to the peer it names and to
  peers that may see the item anyway.
- The peering's ``send`` types filter what goes out, its ``accept`` types
  what comes in.
- A transaction is never pushed back to its own origin.
- Retries back off exponentially with full jitter; a peer that keeps
  failing opens its breaker (paused), is probed once after a cool-down
  (half-open) and closes again on success.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from domain.transaction import ENTITY_TYPES  # noqa: F401  (re-exported: peers and the outbox read it here)


@dataclass(frozen=True)
class Audience:
    """Who is asking: a peer node (by name and host), or an anonymous caller."""

    name: str | None  # urn:domain:<host>, None for an anonymous caller
    send_types: tuple[str, ...] = ENTITY_TYPES
    relay: bool = False  # a peer marked --relay: it carries shared items on
    tags: frozenset[str] = frozenset()  # the subscriber's filter: items carrying a tag of these names (none: all)

    @property
    def host(self) -> str:
        return (self.name or "").removeprefix("urn:domain:")


def hostname(node_host: str) -> str:
    """``host[:port]`` without the port."""
    if node_host.startswith("["):
        return node_host.split("]")[0] + "]"
    return node_host.rsplit(":", 1)[0] if node_host.count(":") == 1 else node_host


def scope_admits(scope: str, own_host: str, audience: Audience,
                 same_domain: Callable[[str, str], bool]) -> bool:
    """Does an entity's scope alone let this audience see it?"""
    if scope == "PUBLIC":
        return True
    if audience.name is None:
        return False
    if scope == "NETWORK":
        return True
    if scope == "DOMAIN":
        return same_domain(hostname(own_host), hostname(audience.host))
    return False  # OWNER, TEAM: only through a share


def may_see(entity: str, scope: str | None, shared_with: Iterable[str], own_host: str,
            audience: Audience, same_domain: Callable[[str, str], bool], owner: str | None = None) -> bool:
    """May this audience see an entity (item, tag, share) in its current state?

    ``scope`` is the current scope of the item (for a share: of its item);
    ``shared_with`` the peers with a live share of that item (for a share
    transaction: the peer it names is included); ``owner`` the item's owner.
    ``None`` scope: unknown here, so only a peer a share names may see it (a
    share can arrive before its item; the peer it names must get it all the
    same).
    """
    if entity not in audience.send_types:
        return False
    shared_with = set(shared_with)
    if audience.name is not None and (audience.name in shared_with or audience.name == owner):
        return True
    if audience.relay and shared_with:
        return True
    if scope is None:
        return False
    return scope_admits(scope, own_host, audience, same_domain)


def backoff_delay(attempt: int, *, base: float = 0.2, cap: float = 60.0,
                  rand: Callable[[], float]) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return rand() * min(cap, base * (2 ** min(attempt, 30)))


def after_failure(breaker: Breaker, attempts: int, now: float, *, retry_after: float | None, cap: float,
                  rand: Callable[[], float]) -> tuple[Breaker, float]:
    """A failed exchange with a peer: its breaker's next state, and when to try again (after
    ``Retry-After`` when the peer said so, else after a backoff; never before the breaker closes)."""
    breaker = breaker.probing(now).failed(now, max_cool_down=5 * cap)
    delay = retry_after or backoff_delay(attempts, cap=cap, rand=rand)
    return breaker, max(now + delay, breaker.open_until if breaker.state == "open" else 0.0)


@dataclass(frozen=True)
class Breaker:
    """A circuit breaker's state: closed, open until a time, or half-open."""

    state: str = "closed"  # closed | open | half-open
    failures: int = 0
    open_until: float = 0.0

    THRESHOLD = 5
    COOL_DOWN = 5.0
    MAX_COOL_DOWN = 300.0

    def allows(self, now: float) -> bool:
        return self.state == "closed" or now >= self.open_until

    def probing(self, now: float) -> Breaker:
        if self.state == "open" and now >= self.open_until:
            return Breaker("half-open", self.failures, self.open_until)
        return self

    def succeeded(self) -> Breaker:
        return Breaker()

    def failed(self, now: float, max_cool_down: float = MAX_COOL_DOWN) -> Breaker:
        failures = self.failures + 1
        if self.state == "half-open" or failures >= self.THRESHOLD:
            cool = min(max_cool_down, self.COOL_DOWN * 2 ** min(30, max(0, failures - self.THRESHOLD)))
            return Breaker("open", failures, now + cool)
        return Breaker("closed", failures, 0.0)

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "failures": self.failures, "open_until": self.open_until}
