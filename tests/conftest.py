"""Fixtures shared by every test: stores, nodes, a trusted peer.

Every storage test runs once per store: SQLite (a file in the test's temp
dir) and PostgreSQL (a database created for the test and dropped after it).
``FEDSYNC_TEST_STORES`` narrows the list (e.g. ``sqlite``);
``FEDSYNC_TEST_PG_URL`` names the server's admin database.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from infrastructure import local_cluster
from infrastructure.node import Node, init_node
from infrastructure.settings import Settings
from tests import forkserver
from tests.factory import SigningPeer, trust
from tests.forkserver import ForkServer

PG_ADMIN_URL = os.environ.get("FEDSYNC_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
STORES = [s for s in os.environ.get("FEDSYNC_TEST_STORES", "sqlite,postgres").split(",") if s]


class PostgresDatabases:
    """Creates throw-away databases on the test server and drops them.

    A new database is a copy of a template that holds the node's tables
    (``CREATE DATABASE ... TEMPLATE``, one template per test process), which
    saves the ~0.2 s of creating them in every PostgreSQL test; ``empty=True``
    gives an empty one (a restore target, the first-open path).
    """

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.created: list[str] = []

    def create(self, *, empty: bool = False) -> str:
        name = f"fedsync_test_{uuid.uuid4().hex[:12]}"
        template = "" if empty else f' TEMPLATE "{_template(self.admin_url)}"'
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"{template}')
        self.created.append(name)
        return _url(self.admin_url, name)

    def drop_all(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


def _url(admin_url: str, name: str) -> str:
    return f"{admin_url.rsplit('/', 1)[0]}/{name}"


_templates: dict[str, str] = {}  # admin URL -> this process's template database
_templates_lock = threading.Lock()


def _template(admin_url: str) -> str:
    """This process's template: a database whose tables a node opened once, without the node's rows."""
    with _templates_lock:
        if admin_url not in _templates:
            name = f"fedsync_test_template_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            _templates[admin_url] = name  # dropped at the end of the session, made or not
            settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="fedsync-template-")),
                                database_url=_url(admin_url, name))
            init_node(settings, "https://template.example.org")
            Node.open(settings).close()
            shutil.rmtree(settings.data_dir)
            with psycopg.connect(_url(admin_url, name), autocommit=True) as conn:
                conn.execute("DELETE FROM token_registry")  # its epoch is each copy's first opening
        return _templates[admin_url]


@pytest.fixture(scope="session", autouse=True)
def _fork_nodes() -> Iterator[None]:
    """Node processes fork from a process that imported ``fedsync serve`` once (tests/forkserver.py), unless
    ``FEDSYNC_TEST_FORK=0``: the same server, without a second of imports per start."""
    if os.environ.get("FEDSYNC_TEST_FORK", "1") == "0":
        yield
        return
    server = ForkServer()
    local_cluster.use_launcher(server)
    forkserver.activate(server)
    yield
    forkserver.activate(None)
    local_cluster.use_launcher(local_cluster.popen)
    server.close()


@pytest.fixture(scope="session", autouse=True)
def _drop_templates() -> Iterator[None]:
    yield
    for admin_url, name in _templates.items():
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_urls(kind: str) -> Iterator[Callable[..., str | None]]:
    """A factory of fresh database URLs for one store kind (None means SQLite), each holding the node's
    tables unless ``empty=True``; drops them after."""
    if kind == "sqlite":
        yield lambda empty=False: None
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests marked ``slow`` (20 s and more) first: run in parallel (``-n 3``), a long test that starts
    last keeps the whole run waiting for it alone."""
    def seconds(item: pytest.Item) -> float:  # @pytest.mark.slow(80): about 80 s; plain slow: 20 s
        marker = item.get_closest_marker("slow")
        return 0 if marker is None else marker.args[0] if marker.args else 20

    items.sort(key=seconds, reverse=True)  # stable: the others keep their order
