"""Fixtures shared by every test: stores, nodes, a trusted peer.

Every storage test runs once per store: SQLite (a file in the test's temp
dir) and PostgreSQL (a database created for the test and dropped after it).
``FEDSYNC_TEST_STORES`` narrows the list (e.g. ``sqlite``);
``FEDSYNC_TEST_PG_URL`` names the server's admin database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from infrastructure.node import Node, init_node
from infrastructure.settings import Settings
from tests.factory import SigningPeer, trust

PG_ADMIN_URL = os.environ.get("FEDSYNC_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
STORES = [s for s in os.environ.get("FEDSYNC_TEST_STORES", "sqlite,postgres").split(",") if s]


class PostgresDatabases:
    """Creates throw-away databases on the test server and drops them."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.created: list[str] = []

    def create(self) -> str:
        name = f"fedsync_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        base = self.admin_url.rsplit("/", 1)[0]
        return f"{base}/{name}"

    def drop_all(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


def database_urls(kind: str) -> Iterator[Callable[[], str | None]]:
    """A factory of fresh database URLs for one store kind (None means SQLite); drops them after."""
    if kind == "sqlite":
        yield lambda: None
        return
    databases = PostgresDatabases(PG_ADMIN_URL)
    yield databases.create
    databases.drop_all()


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> Iterator[Callable[[], str | None]]:
    """Fresh database URLs for one test, once per store kind."""
    yield from database_urls(request.param)


@pytest.fixture(scope="module", params=STORES)
def module_store(request: pytest.FixtureRequest) -> Iterator[Callable[[], str | None]]:
    """Fresh database URLs shared by a module's tests (for nodes they share), once per store kind."""
    yield from database_urls(request.param)


@pytest.fixture
def make_node(store: Callable[[], str | None], tmp_path: Path) -> Iterator[Callable[..., Node]]:
    """Builds initialised nodes (own data dir and database each); closes them after the test."""
    nodes: list[Node] = []

    def make(host: str = "a.example.org", **init: object) -> Node:
        settings = Settings(data_dir=tmp_path / f"{host}-{len(nodes)}", database_url=store())
        init_node(settings, f"https://{host}", **init)
        node = Node.open(settings)
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.close()


@pytest.fixture
def node(make_node: Callable[..., Node]) -> Node:
    return make_node()


@pytest.fixture
def peer(node: Node) -> SigningPeer:
    """A remote node whose keys ``node`` trusts: what it signs, ``node.app.receive`` accepts."""
    remote = SigningPeer()
    trust(node, remote)
    return remote
