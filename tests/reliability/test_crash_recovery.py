"""Crash recovery: a real node killed with SIGKILL at random moments, restarted each time.

Three ``fedsync serve`` processes (both stores): the victim A, a peer B that
pushes to A and is pushed to by A (A's inbox and A's pusher), and a peer C
that A pulls from (``POST /admin/peers/{C}/sync``, A's puller) and that never
pushes. While editors write on all three and A keeps pulling from C, A is
killed at a random moment, then restarted; after every restart:
- every write A acknowledged (a 2xx answer) is in A's store;
- every transaction B's pusher saw acknowledged by A's inbox is in A's
  store (A never pulls from B, so nothing else could have brought it);
- every transaction of C up to the pull cursor A committed is in A's store.
At the end, once sync is quiet, A holds everything of B and C and B holds
everything of A, each transaction once, and A's and B's read models equal a
rebuild from their own stores.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from infrastructure.local_cluster import NodeProcess
from infrastructure.signing import CursorSeal
from tests.e2e.conftest import link, peer
from tests.reliability.conftest import LONG, count, record
from tests.reliability.digest import views

KILLS = count("kills", 5, 20)
SEED = int(time.time()) if LONG else 20261125
MAX_WRITES = 100_000  # bound on each writer's loop


@dataclass
class Writer:
    """An editor creating and editing items on one node over HTTP, remembering what it was told."""

    node: NodeProcess
    token: str
    stop: threading.Event
    acknowledged: list[str] = field(default_factory=list)  # head gids of 2xx answers
    failures: int = 0
    in_flight: bool = False
    thread: threading.Thread | None = None

    def run(self) -> None:
        rng = random.Random(self.node.port)
        heads: dict[str, str] = {}
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.node.base_url, timeout=10, headers=headers) as http:
            for i in range(MAX_WRITES):
                if self.stop.is_set():
                    return
                self.in_flight = True
                try:
                    if heads and rng.random() < 0.6:
                        gid = rng.choice(sorted(heads))
                        response = http.patch(f"/items/{gid}", json={"parent": heads[gid], "markdown": f"edit {i}\n"})
                    else:
                        response = http.post("/items", json={"title": f"item {i}", "markdown": "text\n"})
                except httpx.HTTPError:
                    self.failures += 1
                    time.sleep(0.05)  # the node is down: try again shortly
                    continue
                finally:
                    self.in_flight = False
                if response.status_code in (200, 201):
                    body = response.json()
                    heads[body["gid"]] = body["head"]
                    self.acknowledged.append(body["head"])
                time.sleep(0.01)

    def start(self) -> Writer:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self


def editor_token(node: NodeProcess) -> str:
    """An admin editor token, from the node's keyring on disk (as `fedsync token create` makes it)."""
    return node.token("ann", role="admin")


def gids(node: NodeProcess, where: str = "", params: tuple[Any, ...] = ()) -> set[str]:
    return {r["gid"] for r in node.query(f"SELECT gid FROM tx_index {where}", params)}


def origin_gids(node: NodeProcess, origin: str, up_to: int | None = None) -> set[str]:
    sql = "SELECT gid FROM transactions WHERE origin = ?"
    params: tuple[Any, ...] = (origin,)
    if up_to is not None:
        sql += " AND seq <= ?"
        params += (up_to,)
    return {r["gid"] for r in node.query(sql, params)}


def peer_row(node: NodeProcess, name: str) -> dict[str, Any]:
    return node.query("SELECT * FROM peers WHERE name = ?", (name,))[0]


def seq_of(node: NodeProcess, cursor: str | None, holder: str) -> int:
    """The outbox position of ``node`` that the cursor it gave ``holder`` names (sealed, so opened here)."""
    if cursor is None:
        return 0
    position = CursorSeal.load_or_create(node.settings.keys_dir).open(cursor, holder)
    assert position is not None, f"{holder} holds a cursor {node.name} did not give it: {cursor!r}"
    return position[0]


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # bounded
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def no_duplicates(node: NodeProcess) -> None:
    stored = node.query("SELECT COUNT(*) AS n FROM tx_index")[0]["n"]
    projected = node.query("SELECT COUNT(*) AS n, COUNT(DISTINCT gid) AS d FROM transactions")[0]
    assert stored == projected["n"] == projected["d"], f"{node.name}: {stored} stored, {projected} projected"


def equals_a_rebuild(node: NodeProcess) -> None:
    incremental = views(node.query)
    node.stop()
    admin = node.admin()
    try:
        admin.projector.rebuild()
    finally:
        admin.close()
    assert views(node.query) == incremental, f"{node.name}: read models differ from a rebuild"


@pytest.fixture
def trio(store: Callable[[], str | None], tmp_path: Path) -> Iterator[tuple[NodeProcess, NodeProcess, NodeProcess]]:
    nodes = [NodeProcess(data_dir=tmp_path / name, database_url=store()).init().start() for name in "abc"]
    a, b, c = nodes
    link(a, b)
    peer(a, c)  # A pulls from C ...
    peer(c, a)  # ... which lets A read its outbox, and is never asked to push
    for subscriber, source in ((a, b), (b, a)):
        admin = subscriber.admin()
        try:
            admin.subscribe_to(source.name)
        finally:
            admin.close()
    yield a, b, c
    for node in nodes:
        node.stop()


@pytest.mark.slow(80)
def test_a_node_killed_at_random_moments_loses_nothing_acknowledged_and_duplicates_nothing(trio) -> None:
    a, b, c = trio
    rng = random.Random(SEED)
    stop = threading.Event()
    admin_a, admin_b, admin_c = (editor_token(node) for node in (a, b, c))
    writers = [Writer(node, token, stop).start() for node, token in ((a, admin_a), (b, admin_b), (c, admin_c))]
    pulls = {"ok": 0, "failed": 0, "in_flight": False}

    def pull_from_c() -> None:
        for _ in range(MAX_WRITES):
            if stop.is_set():
                return
            pulls["in_flight"] = True
            try:
                response = httpx.post(f"{a.base_url}/admin/peers/{c.name}/sync", timeout=10,
                                      headers={"Authorization": f"Bearer {admin_a}"})
                pulls["ok" if response.status_code == 200 else "failed"] += 1
            except httpx.HTTPError:
                pulls["failed"] += 1
                time.sleep(0.05)
            finally:
                pulls["in_flight"] = False
            time.sleep(0.02)

    puller = threading.Thread(target=pull_from_c, daemon=True)
    puller.start()
    moments: list[dict[str, Any]] = []
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.3, 1.5))
            moments.append({"writing": writers[0].in_flight, "pulling": pulls["in_flight"],
                            "inbox": peer_row(b, a.name)["push_after"] < (b.query("SELECT MAX(seq) AS m "
                                                                                   "FROM transactions")[0]["m"] or 0)})
            a.kill()

            acked_by_inbox = origin_gids(b, b.name, up_to=int(peer_row(b, a.name)["push_after"]))
            cursor = peer_row(a, c.name)["pull_cursor"]
            pulled = origin_gids(c, c.name, up_to=seq_of(c, cursor, a.name))
            written = set(writers[0].acknowledged)
            a.start()

            held = gids(a)
            assert written <= held, f"acknowledged writes lost: {sorted(written - held)[:5]}"
            assert acked_by_inbox <= held, f"acknowledged pushes lost: {sorted(acked_by_inbox - held)[:5]}"
            assert pulled <= held, f"pulled transactions lost: {sorted(pulled - held)[:5]}"
    finally:
        stop.set()
        for thread in [puller, *(w.thread for w in writers)]:
            thread.join(timeout=30)

    def pulled_nothing() -> bool:
        response = httpx.post(f"{a.base_url}/admin/peers/{c.name}/sync", timeout=30,
                              headers={"Authorization": f"Bearer {admin_a}"})
        return response.status_code == 200 and response.json()["received"] == 0

    wait_until(pulled_nothing, 60, "A's pulls from C to go quiet")
    wait_until(lambda: origin_gids(b, b.name) <= gids(a), 60, "B's pushes to reach A")
    wait_until(lambda: origin_gids(a, a.name) <= gids(b), 60, "A's pushes to reach B")
    assert origin_gids(c, c.name) <= gids(a)
    assert set(writers[0].acknowledged) <= gids(a)
    for node in (a, b):
        no_duplicates(node)
        equals_a_rebuild(node)
    record("crash recovery", store="postgres" if a.database_url else "sqlite", kills=len(moments),
           during_writes=sum(m["writing"] for m in moments), during_pulls=sum(m["pulling"] for m in moments),
           during_inbox=sum(m["inbox"] for m in moments), acknowledged_writes=len(writers[0].acknowledged),
           transactions_on_a=len(gids(a)), pulls_ok=pulls["ok"], seed=SEED)
    assert len(moments) == KILLS
