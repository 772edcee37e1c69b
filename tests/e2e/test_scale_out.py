"""Several ``fedsync serve`` processes on one PostgreSQL store: one node, each duty run by one process.

Three processes serve node X from one database (copies of one data dir, as on three machines behind a load
balancer); a peer Y (SQLite) pulls from X, is pushed to by X, and is pulled from by X. Editors write through
all three; the processes holding the push to Y and the pull from Y are killed with SIGKILL while pushes and
pulls are under way, and the survivors take their duties.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from infrastructure.local_cluster import NodeProcess
from tests.conftest import STORES, database_urls
from tests.e2e.conftest import link
from tests.forkserver import fedsync

needs_postgres = pytest.mark.skipif("postgres" not in STORES, reason="several processes serve a PostgreSQL store")


@pytest.fixture
def postgres() -> Iterator:
    yield from database_urls("postgres")


def readiness(process: NodeProcess) -> dict:
    try:
        return httpx.get(f"{process.base_url}/readyz", timeout=5).json()
    except httpx.HTTPError:
        return {}


def duties(process: NodeProcess) -> str | None:
    return readiness(process).get("duties")


def peer_duties(processes: list[NodeProcess]) -> dict[str, list[NodeProcess]]:
    """The processes that push to the one subscriber, and that pull from the one peer."""
    held = [(p, readiness(p).get("peer_duties") or {}) for p in processes]
    return {kind: [p for p, counts in held if counts.get(kind)] for kind in ("push", "pull")}


def until(check, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # bounded
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {check.__doc__ or check}")


def items_of(process: NodeProcess, origin: str) -> set[str]:
    return {row["item_gid"] for row in process.query("SELECT item_gid FROM documents WHERE origin = ?", (origin,))}


def views(process: NodeProcess) -> list[list[dict]]:
    return [process.query(f"SELECT * FROM {table} ORDER BY {key}")
            for table, key in (("documents", "item_gid"), ("tags", "tag_gid"), ("conflicts", "item_gid"),
                               ("transactions", "seq"))]


@needs_postgres
def test_three_processes_serve_one_node_and_the_duties_move_when_their_holders_are_killed(postgres, tmp_path: Path):
    url = postgres()
    front = NodeProcess(data_dir=tmp_path / "x0", database_url=url, pull_interval=1.0).init()
    backs = []
    for i in (1, 2):
        shutil.copytree(front.data_dir, tmp_path / f"x{i}")
        backs.append(NodeProcess(data_dir=tmp_path / f"x{i}", database_url=url, host=f"127.0.0.1:{front.port}",
                                 pull_interval=1.0))
    y = NodeProcess(data_dir=tmp_path / "y", pull_interval=1.0).init()
    processes = [front, *backs]
    try:
        # The back processes start first, so one of them holds the duties: the peer knows X by the front's URL.
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(NodeProcess.start, backs))
        until(lambda: sorted(duties(p) for p in backs) == ["held", "standby"])
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(NodeProcess.start, (front, y)))
        assert duties(front) == "standby"
        link(front, y)
        admin = y.admin()
        try:
            admin.subscribe_to(front.name)  # X pushes to Y (and pulls from Y; Y pulls from X)
        finally:
            admin.close()
        until(lambda: [len(holders) for holders in peer_duties(processes).values()] == [1, 1])
        assert front.query("SELECT subscribed FROM peers")[0]["subscribed"]

        x_token, y_token = front.token("ann"), y.token("bob")
        acknowledged: list[str] = []
        killed: list[NodeProcess] = []

        def write(i: int) -> None:
            live = [p for p in processes if p not in killed]
            process = live[i % len(live)]
            try:
                answer = httpx.post(f"{process.base_url}/items", headers={"Authorization": f"Bearer {x_token}"},
                                    json={"title": f"x {i}", "markdown": f"from process {process.port}\n"},
                                    timeout=30)
            except httpx.HTTPError:
                return  # the process was killed under the request: not acknowledged
            if answer.status_code == 201:
                acknowledged.append(answer.json()["gid"])
            with httpx.Client(base_url=y.base_url, headers={"Authorization": f"Bearer {y_token}"}) as api:
                api.post("/items", json={"title": f"y {i}", "markdown": "from y\n"}).raise_for_status()

        with ThreadPoolExecutor(3) as pool:
            list(pool.map(write, range(30)))
            holders = peer_duties(processes)
            for holder in [p for p in processes if p in holders["push"] or p in holders["pull"]]:
                holder.kill()  # mid-push (X's edits to Y) and mid-pull (X pulls Y every second)
                killed.append(holder)
            list(pool.map(write, range(30, 60)))

        survivors = [p for p in processes if p not in killed]
        assert survivors and len(killed) in (1, 2)
        until(lambda: sorted(duties(p) for p in survivors) == ["held", *["standby"] * (len(survivors) - 1)],
              timeout=15)
        until(lambda: [len(holders) for holders in peer_duties(survivors).values()] == [1, 1], timeout=15)
        assert len(acknowledged) >= 50

        def converged() -> bool:
            """Y holds every item X stored, X every item Y made."""
            x_items = items_of(front, front.name)
            return (set(acknowledged) <= x_items and items_of(y, front.name) == x_items
                    and items_of(front, y.name) == items_of(y, y.name) and len(items_of(y, y.name)) == 60)

        until(converged, timeout=60)
        for process in (front, y):  # each transaction stored once
            counts = process.query("SELECT COUNT(*) AS n, COUNT(DISTINCT gid) AS d FROM transactions")[0]
            assert counts["n"] == counts["d"] > 0
        for process in (front, y):
            before = views(process)
            admin = process.admin()
            try:
                admin.rebuild_views()
            finally:
                admin.close()
            assert views(process) == before
    finally:
        for process in (*processes, y):
            process.stop()


def test_serve_with_workers_on_sqlite_says_it_needs_postgresql(tmp_path: Path):
    node = NodeProcess(data_dir=tmp_path / "x").init()
    result = fedsync("serve", "--workers", "2", "--port", str(node.port),
                     env=dict(os.environ, FEDSYNC_DATA_DIR=str(node.data_dir)))
    assert result.returncode == 1
    assert "SQLite store is served by one process; several need PostgreSQL" in result.stderr


@needs_postgres
def test_serve_with_workers_on_a_port_in_use_says_so_and_starts_nothing(postgres, tmp_path: Path):
    node = NodeProcess(data_dir=tmp_path / "x", database_url=postgres()).init()
    env = dict(os.environ, FEDSYNC_DATA_DIR=str(node.data_dir), FEDSYNC_DATABASE_URL=node.database_url)
    with socket.socket() as held:  # another program's socket, without SO_REUSEPORT: the workers must not share it
        held.bind(("127.0.0.1", node.port))
        held.listen()
        result = fedsync("serve", "--workers", "2", "--port", str(node.port), env=env, timeout=60)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{node.port}: Address already in use" in result.stderr
    assert "Started server" not in result.stdout + result.stderr


@needs_postgres
def test_serve_with_two_workers_on_postgresql_runs_the_duties_once(postgres, tmp_path: Path):
    node = NodeProcess(data_dir=tmp_path / "x", database_url=postgres()).init()
    env = dict(os.environ, FEDSYNC_DATA_DIR=str(node.data_dir), FEDSYNC_DATABASE_URL=node.database_url)
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "api", "serve", "--workers", "2", "--port", str(node.port),
                                    "--no-access-log"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        until(lambda: "held" in {duties(node) for _ in range(10)} and log.read_text().count("Started server") == 2)
        editor = {"Authorization": f"Bearer {node.token('ann')}"}
        for i in range(10):  # the kernel spreads the connections over both workers
            try:
                httpx.post(f"{node.base_url}/items", headers=editor, json={"title": f"t{i}", "markdown": "m\n"},
                           timeout=30).raise_for_status()
            except httpx.HTTPError as error:  # once seen in CI (a reset connection): keep what the workers said
                raise AssertionError(f"edit {i}: {error!r}\n{log.read_text()[-3000:]}") from error
        assert len(node.query("SELECT item_gid FROM documents")) == 10
        time.sleep(1.5)  # a standby would have taken the duties by now if it could
        assert log.read_text().count("now runs the node's background duties") == 1, log.read_text()[-3000:]
        assert "POST /items HTTP/1.1" not in log.read_text()  # --no-access-log holds in every worker
    finally:
        process.terminate()
        process.wait(timeout=30)
