"""Fixtures for tests with real node processes: a cluster factory per store.

Starting a ``fedsync serve`` process costs seconds (imports, then the
readiness wait), most of an end-to-end test's time: ``Spawner.many`` starts
a test's nodes together, and ``module_spawn`` lets the tests of a module
share nodes where a fresh process is not what they check (each such test
makes its own items, so none depends on another or on their order).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from domain.transaction import ENTITY_TYPES
from infrastructure.local_cluster import NodeProcess


class Spawner:
    """Initialised ``fedsync serve`` processes on one store kind, under one directory; ``close`` stops them."""

    def __init__(self, store: Callable[..., str | None], root: Path) -> None:
        self.store = store
        self.root = root
        self.started: list[NodeProcess] = []

    def __call__(self, name: str, *, start: bool = True, **kwargs: object) -> NodeProcess:
        node = NodeProcess(data_dir=self.root / name, database_url=self.store(), **kwargs).init()
        self.started.append(node)
        return node.start() if start else node

    def start(self, *nodes: NodeProcess) -> None:
        """Start the nodes at the same time: each start mostly waits for its own process."""
        with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
            list(pool.map(NodeProcess.start, nodes))  # raises the first start that failed

    def many(self, *names: str, **kwargs: object) -> list[NodeProcess]:
        """Nodes named ``names`` (the same options each), started together."""
        nodes = [self(name, start=False, **kwargs) for name in names]
        self.start(*nodes)
        return nodes

    def close(self) -> None:
        for node in self.started:
            node.stop()
        for node in self.started:
            # The in-commit projection falls back on a catch-up when it fails, so a failure
            # would go unseen in the views: it must not happen at all.
            log = node.log_path.read_text() if node.log_path and node.log_path.exists() else ""
            assert "in their commit failed" not in log, f"{node.data_dir.name}: {log[-3000:]}"


@pytest.fixture
def spawn(store: Callable[[], str | None], tmp_path: Path) -> Iterator[Spawner]:
    """Starts initialised ``fedsync serve`` processes; stops them after the test."""
    spawner = Spawner(store, tmp_path)
    yield spawner
    spawner.close()


@pytest.fixture(scope="module")
def module_spawn(module_store: Callable[[], str | None],
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spawner]:
    """Like ``spawn``, for nodes the tests of a module share; stops them after the module."""
    spawner = Spawner(module_store, tmp_path_factory.mktemp("shared"))
    yield spawner
    spawner.close()


def peer(a: NodeProcess, b: NodeProcess, *, send: tuple[str, ...] = ENTITY_TYPES,
         accept: tuple[str, ...] = ENTITY_TYPES, relay: bool = True) -> None:
    """Make ``a`` peer with ``b`` (a's side only); test nodes relay for each other unless a test says not."""
    node = a.admin()
    try:
        node.add_peer(b.base_url, send, accept, name=b.name, relay=relay)
    finally:
        node.close()


def link(a: NodeProcess, b: NodeProcess, **kwargs: object) -> None:
    """Peer both ways."""
    peer(a, b, **kwargs)
    peer(b, a, **kwargs)
