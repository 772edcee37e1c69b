"""An in-process federation transport with fault injection.

``InProcessClient`` has the interface of ``FederationClient`` (the HTTP
port of ``infrastructure/node.py``) but calls the other nodes' server side
(``Federation``, ``PeerStore``) directly, through a ``Network`` that knows
every node by base URL. Requests and answers go through JSON, so no two
nodes ever share a mutable object, and server refusals become the same
``PeerError``/``CursorGone`` the HTTP client raises.

While ``Network.faulty`` is on, each request may be:
- dropped before the server sees it (``drop_request``);
- answered but the answer lost (``drop_response``): the server changed
  its store, the caller saw a failure;
- for inbox deliveries, delayed (``delay``: the caller times out and the
  message arrives later, in any order with other delayed ones) or
  duplicated (``duplicate``: delivered now and again later).
Every fault decision is drawn from the seed and the request's own place in
its sequence (caller, callee, endpoint, n-th such call), not from one shared
stream: the puller fetches its next page on another thread, and the faults
must not depend on how the two threads interleave. So a schedule is
replayed (and shrunk) from its seed.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from domain.errors import BatchRefused, DomainError, Gone
from infrastructure.federation_client import CursorGone, PeerError, answered


@dataclass(frozen=True)
class Faults:
    drop_request: float = 0.0
    drop_response: float = 0.0
    delay: float = 0.0
    duplicate: float = 0.0


@dataclass
class Message:
    """An inbox delivery on its way: from ``sender`` to the node at ``base_url``."""

    sender: str
    base_url: str
    transactions: list[dict[str, Any]]


def wire(value: Any) -> Any:
    """What the other side of an HTTP exchange would get: a JSON copy."""
    return orjson.loads(orjson.dumps(value))


class Alternating:
    """One node served by several instances on its one store (several processes behind a load balancer):
    each use of it goes to the next instance in turn."""

    def __init__(self, *instances: Any) -> None:
        self.instances = instances
        self._turn = itertools.count()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.instances[next(self._turn) % len(self.instances)], name)


class Network:
    """The nodes of one in-process cluster, by base URL, and what is in flight between them."""

    def __init__(self, seed: int, faults: Faults = Faults()) -> None:
        self.seed = seed
        self.rng = random.Random(seed)  # for the order of late deliveries (main thread only)
        self.faults = faults
        self.faulty = False
        self.nodes: dict[str, Any] = {}
        self.in_flight: list[Message] = []
        self.stats: Counter[str] = Counter()
        self._calls: Counter[tuple[str, ...]] = Counter()
        self._lock = threading.Lock()

    def _count(self, what: str, n: int = 1) -> None:
        with self._lock:
            self.stats[what] += n

    def endpoint(self, name: str) -> InProcessClient:
        """The client a node called ``name`` uses to reach the others."""
        return InProcessClient(self, name)

    def register(self, node: Any) -> None:
        self.nodes[node.config.base_url] = node

    def _dice(self, *call: str) -> random.Random:
        """A generator for one request: the n-th ``call`` (caller, callee, endpoint) of the run."""
        with self._lock:
            self._calls[call] += 1
            n = self._calls[call]
        return random.Random(f"{self.seed}|{'|'.join(call)}|{n}")

    def _chance(self, dice: random.Random, probability: float) -> bool:
        draw = dice.random()  # always drawn, so later draws do not depend on the probabilities
        return self.faulty and probability > 0 and draw < probability

    def call(self, caller: str | None, base_url: str, what: str, handler: Callable[[Any], Any], *,
             authenticated: bool = True) -> Any:
        node = self.nodes.get(base_url)
        if node is None:
            raise PeerError(f"{what} {base_url}: connection refused")
        dice = self._dice(caller or "", base_url, what)
        if self._chance(dice, self.faults.drop_request):
            self._count("dropped requests")
            raise PeerError(f"{what} {base_url}: request lost")
        if authenticated and (caller is None or node.peers.find(caller) is None):
            raise PeerError(f"{what} {base_url}: 401 unknown caller {caller}", 401)
        try:
            answer = wire(handler(node))
        except Gone as e:
            raise CursorGone(f"{what} {base_url}: 410 {e.detail}", 410) from None
        except DomainError as e:
            problem = wire({"status": e.status, "detail": e.detail, **e.extra})
            raise PeerError(f"{what} {base_url}: {e.status} {e.detail}", e.status,
                            e.extra.get("retry_after"), problem) from None
        self._count(what)
        if self._chance(dice, self.faults.drop_response):
            self._count("lost answers")
            raise PeerError(f"{what} {base_url}: answer lost")
        return answer

    def deliver(self, message: Message) -> None:
        """Hand a delivery to its inbox now (no faults); nobody waits for the answer any more."""
        node = self.nodes[message.base_url]
        self._count("inbox")
        with contextlib.suppress(BatchRefused):
            node.federation.inbox(message.sender, wire(message.transactions))

    def deliver_late(self, index: int) -> None:
        """One delayed or duplicated delivery arrives (any of them: the network reorders)."""
        if self.in_flight:
            message = self.in_flight.pop(index % len(self.in_flight))
            self._count("late deliveries")
            self.deliver(message)

    def flush(self) -> None:
        """Everything still in flight arrives, in a random order."""
        while self.in_flight:
            self.deliver_late(self.rng.randrange(len(self.in_flight)))


class InProcessClient:
    """``FederationClient`` for one node of a ``Network``."""

    def __init__(self, network: Network, name: str) -> None:
        self.network = network
        self.name = name
        self.token_for: Callable[[str], str] = lambda peer: ""

    def close(self) -> None:
        pass

    # --- discovery -------------------------------------------------------
    def node_info(self, base_url: str) -> dict[str, Any]:
        def info(node: Any) -> dict[str, Any]:
            return {"name": node.name, "base_url": node.config.base_url,
                    "jwks_uri": f"{node.config.base_url}/.well-known/jwks.json", "protocol": "fedsync/1"}

        return self.network.call(None, base_url, "node_info", info, authenticated=False)

    def jwks(self, base_url: str) -> dict[str, Any]:
        return self.network.call(None, base_url, "jwks", lambda node: node.keyring.jwks(), authenticated=False)

    def keys_of(self, peer: str, base_url: str, origin: str) -> dict[str, Any]:
        return self.network.call(self.name, base_url, "keys", lambda node: node.federation.keys_for(origin))

    # --- pull --------------------------------------------------------------
    def outbox(self, peer: str, base_url: str, after: str | None) -> dict[str, Any]:
        return self.network.call(self.name, base_url, "outbox",
                                 lambda node: node.federation.outbox_page(self.name, after))

    def gids(self, peer: str, base_url: str, after: str | None) -> dict[str, Any]:
        return self.network.call(self.name, base_url, "gids",
                                 lambda node: node.federation.gids_page(self.name, after))

    def fetch(self, peer: str, base_url: str, gids: Sequence[str], *, ancestors: bool = False,
              have: Sequence[str] = ()) -> list[dict[str, Any]]:
        wanted, held = wire(list(gids)), wire(list(have))
        return self.network.call(self.name, base_url, "fetch",
                                 lambda node: node.federation.fetch(self.name, wanted, ancestors=ancestors, have=held))

    # --- push --------------------------------------------------------------
    def subscribe(self, peer: str, base_url: str, tags: Sequence[str] = ()) -> dict[str, Any]:
        def subscribe(node: Any) -> dict[str, Any]:
            node.peers.subscribe(self.name, tags=list(tags))
            node.wake_pusher()
            return {"subscriber": self.name, "subscribed": True, "tags": list(tags)}

        return self.network.call(self.name, base_url, "subscribe", subscribe)

    def deliver(self, peer: str, base_url: str, transactions: Sequence[dict[str, Any]]) -> dict[str, Any]:
        network = self.network
        message = Message(self.name, base_url, wire(list(transactions)))
        dice = network._dice(self.name, base_url, "deliver")
        if network._chance(dice, network.faults.delay):
            network._count("delayed deliveries")
            network.in_flight.append(message)
            raise PeerError(f"POST {base_url}/federation/inbox: timed out")
        if network._chance(dice, network.faults.duplicate):
            network._count("duplicated deliveries")
            network.in_flight.append(message)
        try:
            return network.call(self.name, base_url, "inbox",
                                lambda node: {"results": node.federation.inbox(self.name, wire(message.transactions))})
        except PeerError as e:
            return answered(e)
