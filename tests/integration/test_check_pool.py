"""Pulled pages checked in worker processes (both stores): the same outcomes as checking them at home.

A node pulls from a real HTTP peer (``HostilePeer``) pages that mix good
transactions with bad ones: a signature that no longer matches, a key the
peer never published, an origin nobody vouched for, a time far ahead, junk.
One node checks pages in worker processes (``check_pool.py``), the other
in its own process; both must store and refuse exactly the same, with the
same reasons, and the workers must have done part of the checking.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from domain.errors import InvalidSignature, RevokedKey, UnknownKey
from domain.transaction import signing_input
from infrastructure.check_pool import MIN_PAGE, CheckPool
from infrastructure.node import Node, init_node
from infrastructure.settings import Settings
from infrastructure.signing import SigningKey
from tests.factory import AUTHOR, SigningPeer, history, trust
from tests.integration.test_key_directory import R1, D, jwks, signed
from tests.reliability.hostile_peer import HostilePeer

PAGE = 300


def open_node(store: Callable[[], str | None], root: Path, name: str, verify_workers: int) -> Node:
    settings = Settings(data_dir=root / name, database_url=store(), verify_workers=verify_workers)
    init_node(settings, f"https://{name}.example.org")
    return Node.open(settings)


def pages(peer: HostilePeer) -> list[list[Any]]:
    signer = peer.signer
    txs: list[Any] = history(signer, items=PAGE * 3 // 5, edits=4)
    stranger = SigningPeer(host="nobody.example.com")  # an origin this node never learns keys of
    rogue = SigningPeer(host=signer.host, key=SigningKey.generate("ES256"))  # the peer's name, a key it never published
    for i in (PAGE + 7, 2 * PAGE + 11):  # later pages, which the workers check
        txs[i] = dict(txs[i], scope="OWNER")  # no longer what was signed
        txs[i + 1] = rogue.create_item("unpublished key")
        txs[i + 2] = stranger.create_item("unknown origin")
        txs[i + 3] = signer.create_item("from the future", created_at="2999-01-01T00:00:00.000000Z")
        txs[i + 4] = {"gid": "junk", "entity": "item"}
    return [txs[start:start + PAGE] for start in range(0, len(txs), PAGE)]


def pull(node: Node, peer: HostilePeer) -> tuple[Any, set[str], list[tuple[str, str, str]]]:
    node.add_peer(peer.base_url, ("item",), ("item",))
    result = node.syncer.pull(peer.name)
    with node.db.read() as cur:
        stored = {r["gid"] for r in cur.execute("SELECT gid FROM transactions").fetchall()}
    refusals = sorted((r.gid, r.type, re.sub(r"clock \(.*\)", "clock", r.reason)) for r in node.refusals.recent())
    return (result.stored, result.refused, result.pending), stored, refusals


def test_pulled_pages_checked_in_worker_processes_store_and_refuse_what_checking_at_home_does(store, tmp_path):
    served: list[list[Any]] = []

    def outbox(n: int, after: str | None) -> dict[str, Any] | None:
        i = 0 if after is None else int(after.rsplit("-", 1)[1]) + 1
        return {"transactions": served[i], "last": f"00000000-0000-4000-8000-{i:012d}", "more": i + 1 < len(served)}

    with HostilePeer(outbox=outbox) as peer:
        served.extend(pages(peer))
        pooled = open_node(store, tmp_path, "pooled", verify_workers=2)
        at_home = open_node(store, tmp_path, "home", verify_workers=1)
        try:
            assert pooled.check_pool.warm(timeout=60), "the check worker did not start"
            with_workers = pull(pooled, peer)
            without = pull(at_home, peer)
            answered, idle = pooled.check_pool.answered, at_home.check_pool.answered
        finally:
            pooled.close()
            at_home.close()

    assert with_workers == without
    counts, stored, refusals = with_workers
    assert counts[0] == len(stored) > 2 * PAGE
    assert len(refusals) >= 8 and {r[1] for r in refusals} >= {"invalid-signature", "unknown-key",
                                                                 "invalid-transaction"}
    assert answered >= 2 * PAGE - 20 and idle == 0


def test_a_peer_that_signs_with_a_key_it_published_after_peering_has_every_page_checked_in_the_workers(
        store, tmp_path):
    """The keys a page needs are learned before it is handed to the workers, not when it is received: else the
    first page of a new key (or origin), and often the second, fetched meanwhile, went to the workers with a
    snapshot that lacked the key and were checked again at home."""
    served: list[list[Any]] = []

    def outbox(n: int, after: str | None) -> dict[str, Any] | None:
        i = 0 if after is None else int(after.rsplit("-", 1)[1]) + 1
        return {"transactions": served[i], "last": f"00000000-0000-4000-8000-{i:012d}", "more": i + 1 < len(served)}

    with HostilePeer(outbox=outbox) as peer:
        pooled = open_node(store, tmp_path, "pooled", verify_workers=2)
        try:
            pooled.add_peer(peer.base_url, ("item",), ("item",))  # learns the peer's keys of now
            rotated = SigningPeer(host=peer.signer.host, key=SigningKey.generate("ES256"))
            peer.published.append(rotated.key)
            txs = history(rotated, items=PAGE * 3 // 5, edits=4)
            served.extend(txs[start:start + PAGE] for start in range(0, len(txs), PAGE))
            assert pooled.check_pool.warm(timeout=60), "the check worker did not start"
            result = pooled.syncer.pull(peer.name)
            answered = pooled.check_pool.answered
        finally:
            pooled.close()
    assert result.stored == len(txs) == 3 * PAGE
    assert answered == len(txs)


def test_pages_handed_over_while_the_workers_start_are_checked_at_home_unless_answered(node):
    """A page submitted before the workers are up is queued for them, not refused: once they are up its answer
    is waited for; while they are still starting, the caller does not wait and checks it at home."""
    batch = page_of(node)
    pool = CheckPool(1, node.keys.snapshot)
    try:
        early = pool.submit(batch)  # the pool starts now: a spawned worker takes well over the next line
        assert early is not None
        started = time.perf_counter()
        assert early.result() == [None] * len(batch)
        # the answers all None already say it did not wait for the worker; the time, that it did not wait at all
        assert time.perf_counter() - started < 1.0, "the caller waited for a worker that was still starting"
        assert pool.warm(timeout=60)
        later = pool.submit(batch)
        assert later is not None and all(tx is not None for tx in later.result())
    finally:
        pool.close()


WORKER_MODULES = """
import sys
from infrastructure.check_pool import CheckPool
if __name__ == "__main__":
    pool = CheckPool(1, lambda origins: None)
    assert pool.warm(60)
    print(*pool._pool.submit(eval, "sorted(__import__('sys').modules)").result(60))
    pool.close()
"""


def test_a_check_worker_started_by_the_console_script_imports_neither_the_cli_nor_a_database_driver(tmp_path):
    """A spawned worker runs the program's main file again before it works: for the ``fedsync`` console
    script (its module level written here as pip writes it, from pyproject.toml's entry point) that must not
    import the CLI, whose imports were most of a worker's start (0.6-0.9 s: pages of a catch-up checked at
    home meanwhile) and 40 MiB of its memory; the worker itself needs no database driver."""
    import tomllib

    entry = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]["scripts"]["fedsync"]
    module, function = entry.split(":")
    script = tmp_path / "fedsync"
    # the script's module level, as the worker runs it (its ``main`` call is guarded), then this test's main
    script.write_text(f"import re\nimport sys\nfrom {module} import {function}\n" + WORKER_MODULES)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr
    modules = set(done.stdout.split())
    assert "domain.receiving" in modules  # the worker's own work
    assert not {"api.cli", "fastapi", "typer", "psycopg", "sqlite3", "infrastructure.persistence"} & modules


def test_a_key_snapshot_verifies_and_refuses_as_the_directory_does(node):
    peer = SigningPeer()
    trust(node, peer)
    key, other = SigningKey.generate("ES256"), SigningKey.generate("ES256")
    node.keys.vouch(D, R1, jwks(key, revoked=[{"kid": key.kid, "since": "2026-12-01T12:00:00Z"}]))
    own = node.app.transactions([node.app.create_item(author=AUTHOR, title="t", markdown="m\n").gid])
    theirs = peer.create_item()
    snapshot = node.keys.snapshot([D, peer.name, node.name, "urn:domain:nobody.example.com"])

    for verify in (node.keys.verify, snapshot.verify):
        for tx in (*own.values(), theirs):
            verify(tx, signing_input(tx))
        verify(*signed(key, created_at="2026-12-01T11:00:00Z"))
        with pytest.raises(RevokedKey):
            verify(*signed(key, created_at="2026-12-01T13:00:00Z"))
        with pytest.raises(UnknownKey):
            verify(*signed(other))
        with pytest.raises(UnknownKey):
            verify(*signed(key, origin="urn:domain:nobody.example.com"))
        tampered = dict(theirs, scope="OWNER")
        with pytest.raises(InvalidSignature):
            verify(tampered, signing_input(tampered))


def page_of(node: Node) -> list[dict]:
    """A page of a trusted peer's transactions, large enough for the workers."""
    peer = SigningPeer()
    trust(node, peer)
    return history(peer, items=MIN_PAGE // 5 + 1, edits=4)


def kill_workers(pool: CheckPool) -> None:
    for process in list(pool._pool._processes.values()):  # noqa: SLF001
        os.kill(process.pid, signal.SIGKILL)
        process.join(10)


def test_a_check_worker_that_dies_only_sends_pages_home_until_the_pool_starts_again(node):
    batch = page_of(node)
    pool = CheckPool(1, node.keys.snapshot)
    try:
        assert pool.submit(batch[:MIN_PAGE - 1]) is None  # too small: checked at home
        assert pool.warm(timeout=60)
        first = pool.submit(batch)
        assert first is not None and all(tx is not None for tx in first.result())
        kill_workers(pool)
        lost = pool.submit(batch)
        assert lost is None or lost.result() == [None] * len(batch)
        assert pool.warm(timeout=60)
        again = pool.submit(batch)
        assert again is not None and all(tx is not None for tx in again.result())
    finally:
        pool.close()
    assert pool.submit(batch) is None  # closed: everything is checked at home


ORPHANED = """
import os, signal
from infrastructure.check_pool import CheckPool
pool = CheckPool(1, lambda origins: None)
assert pool.warm(60)
print(*(process.pid for process in pool._pool._processes.values()), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_check_workers_exit_when_the_process_that_started_them_is_killed():
    done = subprocess.run([sys.executable, "-c", ORPHANED], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL
    workers = [int(pid) for pid in done.stdout.split()]
    assert workers

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"

    for _ in range(100):  # bounded: 10 s
        if not any(alive(pid) for pid in workers):
            break
        time.sleep(0.1)
    assert not any(alive(pid) for pid in workers), "a check worker outlived the process that started it"


def test_after_three_broken_pools_every_page_is_checked_at_home(node):
    batch = page_of(node)
    pool = CheckPool(1, node.keys.snapshot)
    try:
        for _ in range(3):
            assert pool.warm(timeout=60)
            kill_workers(pool)
            lost = pool.submit(batch)
            assert lost is None or lost.result() == [None] * len(batch)
        assert pool.workers == 0
        assert not pool.warm(timeout=1) and pool.submit(batch) is None
    finally:
        pool.close()
