"""A cluster of nodes in one process, wired by the in-process transport.

Each node is a real ``Node`` (its own data dir and SQLite file, ES256 key)
whose federation client is the ``Network``'s ``InProcessClient``: pulls,
pushes, gap fills and ancestor fetches run the product's own syncer and
server code, only the HTTP hop is replaced. Peering is symmetric along the
topology's edges, and every node subscribes to each of its peers.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from domain.federation import ENTITY_TYPES
from infrastructure.federation_client import PeerError
from infrastructure.node import Node, init_node
from infrastructure.settings import Settings
from infrastructure.sync import PullResult
from tests.reliability.transport import Alternating, Network

# Two registrable domains, so DOMAIN scope matters between some pairs and not others.
HOSTS = ("n0.alpha.org", "n1.beta.net", "n2.alpha.org", "n3.beta.net", "n4.alpha.org")
MAX_PUSH_BATCHES = 50


def edges_of(kind: str, count: int, parents: list[int]) -> set[tuple[int, int]]:
    """Undirected edges (i < j) of a topology over nodes 0..count-1."""
    if kind == "mesh":
        return set(itertools.combinations(range(count), 2))
    if kind == "hub":
        return {(0, i) for i in range(1, count)}
    if kind == "chain":
        return {(i, i + 1) for i in range(count - 1)}
    # a random tree: node i hangs below one of the nodes before it
    return {(parents[i - 1] % i, i) for i in range(1, count)}


class Cluster:
    def __init__(self, root: Path, count: int, edges: Iterable[tuple[int, int]], network: Network,
                 database_urls: list[str | None] | None = None, *, relay: bool = True,
                 twins: Iterable[int] = ()) -> None:
        """``relay``: every node marks its peers as relays (keys of nodes two hops away, shared items).
        ``twins``: nodes served by two instances on their one store, as by two ``fedsync serve`` processes
        (each its own caches and write lock); commands and requests alternate between the two."""
        self.network = network
        self.nodes: list[Node] = []
        for i, host in enumerate(HOSTS[:count]):
            url = database_urls[i] if database_urls else None
            settings = Settings(data_dir=root / host, database_url=url)
            init_node(settings, f"https://{host}", alg="ES256")
            node = Node.open(settings, client=network.endpoint(f"urn:domain:{host}"))
            network.register(node)
            self.nodes.append(node)
        self.edges = sorted(set(edges))
        for a, b in self.edges:
            for x, y in ((a, b), (b, a)):
                self.nodes[x].add_peer(self.nodes[y].config.base_url, ENTITY_TYPES, ENTITY_TYPES, relay=relay)
        for a, b in self.edges:
            self.nodes[a].subscribe_to(self.nodes[b].name)
            self.nodes[b].subscribe_to(self.nodes[a].name)
        self.twins: dict[int, Node] = {}
        self.twin_turns = 0  # commands the twins ran
        for i in twins:
            node = self.nodes[i]
            self.twins[i] = Node.open(node.settings, client=network.endpoint(node.name))
            network.register(Alternating(node, self.twins[i]))

    @property
    def links(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {n.name: set() for n in self.nodes}
        for a, b in self.edges:
            out[self.nodes[a].name].add(self.nodes[b].name)
            out[self.nodes[b].name].add(self.nodes[a].name)
        return out

    def peers_of(self, index: int) -> list[str]:
        return sorted(self.links[self.nodes[index].name])

    def instance(self, index: int, turn: int) -> Node:
        """The node at ``index``, or on its ``turn``, its twin."""
        twin = self.twins.get(index)
        if twin is not None and turn % 2:
            self.twin_turns += 1
            return twin
        return self.nodes[index]

    def close(self) -> None:
        for node in (*self.nodes, *self.twins.values()):
            node.close()

    # --- sync steps (a failure of the network is an outcome, not an error) -----
    @staticmethod
    def pull(node: Node, peer: str) -> None:
        with contextlib.suppress(PeerError):
            node.syncer.pull(peer)

    @staticmethod
    def push(node: Node, peer: str) -> int:
        sent = 0
        for _ in range(MAX_PUSH_BATCHES):
            try:
                batch = node.syncer.push(peer)
            except PeerError:
                return sent
            if not batch.sent:
                return sent
            sent += batch.sent
        return sent

    @staticmethod
    def gap_fill(node: Node, peer: str) -> None:
        with contextlib.suppress(PeerError):
            node.syncer.gap_fill(node.peers.get(peer), PullResult(peer), None)

    def fingerprint(self) -> tuple[Any, ...]:
        return tuple((n.app.recorder.max_notification_id() or 0, n.peers.pending_count()) for n in self.nodes)

    @staticmethod
    def reconcile(node: Node, peer: str) -> None:
        with contextlib.suppress(PeerError):
            node.syncer.reconcile(peer)

    def quiesce(self, max_rounds: int) -> int:
        """Anti-entropy until nothing changes: rounds of pulls, pushes and retries, then a round
        of gid-diffs (the workers' occasional reconcile), again while that finds anything."""
        for round_ in range(1, max_rounds + 1):
            before = self.fingerprint()
            self.sync_round()
            if self.fingerprint() == before:
                self.sync_round(reconcile=True)
                if self.fingerprint() == before:
                    return round_
        raise AssertionError(f"sync did not settle within {max_rounds} rounds")

    def sync_round(self, *, reconcile: bool = False) -> None:
        for i, node in enumerate(self.nodes):
            for peer in self.peers_of(i):
                (self.reconcile if reconcile else self.pull)(node, peer)
        for i, node in enumerate(self.nodes):
            for peer in self.peers_of(i):
                self.push(node, peer)
            node.federation.retry_pending()
