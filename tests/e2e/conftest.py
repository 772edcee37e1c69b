"""Fixtures for tests with real node processes: a cluster factory per store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from infrastructure.local_cluster import NodeProcess


@pytest.fixture
def spawn(store: Callable[[], str | None], tmp_path: Path) -> Iterator[Callable[..., NodeProcess]]:
    """Starts initialised ``fedsync serve`` processes; stops them after the test."""
    started: list[NodeProcess] = []

    def make(name: str, *, start: bool = True, **kwargs: object) -> NodeProcess:
        node = NodeProcess(data_dir=tmp_path / name, database_url=store(), **kwargs).init()
        started.append(node)
        return node.start() if start else node

    yield make
    for node in started:
        node.stop()
    for node in started:
        # The in-commit projection falls back on a catch-up when it fails, so a failure
        # would go unseen in the views: it must not happen at all.
        log = node.log_path.read_text() if node.log_path and node.log_path.exists() else ""
        assert "in their commit failed" not in log, f"{node.data_dir.name}: {log[-3000:]}"


def peer(a: NodeProcess, b: NodeProcess, *, send: tuple[str, ...] = ("item", "tag", "share"),
         accept: tuple[str, ...] = ("item", "tag", "share")) -> None:
    """Make ``a`` peer with ``b`` (a's side only)."""
    node = a.admin()
    try:
        node.add_peer(b.base_url, send, accept)
    finally:
        node.close()


def link(a: NodeProcess, b: NodeProcess, **kwargs: tuple[str, ...]) -> None:
    """Peer both ways."""
    peer(a, b, **kwargs)
    peer(b, a, **kwargs)
