"""Background duties held by one process of those sharing a store, and saves waking the others."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from infrastructure.duties import Duties
from infrastructure.node import Node, init_node
from infrastructure.settings import Settings
from tests.conftest import STORES, database_urls
from tests.factory import AUTHOR


@pytest.fixture
def postgres() -> Iterator:
    yield from database_urls("postgres")


class Holder:
    """A Duties whose duty only records that it runs."""

    def __init__(self, url: str | None) -> None:
        self.running = threading.Event()
        self.woken = threading.Event()
        self.duties = Duties(url, self._start, self.woken.set)

    def _start(self):
        self.running.set()
        return self.running.clear


def test_on_sqlite_the_duties_start_at_once_in_the_only_process():
    holder = Holder(None)
    holder.duties.start()
    assert holder.running.is_set() and holder.duties.held
    holder.duties.stop()
    assert not holder.running.is_set()


@pytest.mark.skipif("postgres" not in STORES, reason="several processes share a PostgreSQL store only")
def test_one_of_two_holds_the_duties_and_the_other_takes_them_when_it_stops(postgres):
    url = postgres()
    first, second = Holder(url), Holder(url)
    first.duties.start()
    assert first.running.wait(10)
    second.duties.start()
    try:
        assert not second.running.wait(1.5)  # the lock is held: the second waits
        first.duties.stop()
        assert not first.running.is_set()
        assert second.running.wait(10)
    finally:
        first.duties.stop()
        second.duties.stop()


@pytest.mark.skipif("postgres" not in STORES, reason="several processes share a PostgreSQL store only")
def test_a_save_in_one_process_wakes_the_others(postgres, tmp_path):
    settings = Settings(data_dir=tmp_path, database_url=postgres())
    init_node(settings, "https://a.example.org")
    node = Node.open(settings)
    other = Holder(settings.database_url)
    other.duties.start()
    try:
        assert other.running.wait(10)
        other.woken.clear()
        node.app.create_item(author=AUTHOR, title="t", markdown="m\n")
        assert other.woken.wait(10)
    finally:
        other.duties.stop()
        node.close()


@pytest.mark.skipif("postgres" not in STORES, reason="several processes share a PostgreSQL store only")
def test_processes_opening_a_new_store_together_take_turns_creating_its_tables(postgres, tmp_path):
    # Node.open creates the tables it misses; several at once raced in PostgreSQL's catalog
    # ('tuple concurrently updated') and a worker of `serve --workers N` failed to start.
    init_node(Settings(data_dir=tmp_path, database_url=postgres()), "https://a.example.org")
    fresh = Settings(data_dir=tmp_path, database_url=postgres(empty=True))
    with ThreadPoolExecutor(4) as pool:
        nodes = list(pool.map(lambda _: Node.open(fresh), range(4)))
    for node in nodes:
        assert node.readiness()["store"] == "ok"
        node.close()


@pytest.mark.skipif("postgres" not in STORES, reason="several processes share a PostgreSQL store only")
def test_a_process_whose_duties_fail_to_start_lets_them_go(postgres):
    url = postgres()
    broken, healthy = Holder(url), Holder(url)
    failures = []

    def fail_once():
        if not failures:
            failures.append("start failed")
            raise RuntimeError("the duties could not start")
        return broken._start()

    broken.duties._start = fail_once
    broken.duties.start()  # takes the lock first, fails to start the duties
    pause = threading.Event()
    for _ in range(100):  # bounded: 10 s
        if failures:
            break
        pause.wait(0.1)
    healthy.duties.start()
    try:
        for _ in range(100):  # bounded: 10 s
            if broken.running.is_set() or healthy.running.is_set():
                break
            pause.wait(0.1)
        assert failures and (broken.running.is_set() or healthy.running.is_set())
    finally:
        broken.duties.stop()
        healthy.duties.stop()


class Peers:
    """A PeerDuties port that records which peer duties its process holds; ``busy`` ones are under way."""

    def __init__(self, wanted: set) -> None:
        self._wanted = wanted
        self.held: set = set()
        self.busy: set = set()
        self.lock = threading.Lock()

    def wanted(self) -> set:
        return set(self._wanted)

    def take(self, duty) -> None:
        with self.lock:
            assert duty not in self.held
            self.held.add(duty)

    def release(self, duty) -> bool:
        with self.lock:
            if duty in self.busy:
                return False
            self.held.discard(duty)
            return True

    def release_all(self) -> None:
        with self.lock:
            self.held.clear()


def until(check, timeout: float = 15.0) -> None:
    pause = threading.Event()
    for _ in range(int(timeout / 0.05)):  # bounded
        if check():
            return
        pause.wait(0.05)
    raise AssertionError(f"not within {timeout} s: {check.__doc__}")


@pytest.mark.skipif("postgres" not in STORES, reason="several processes share a PostgreSQL store only")
def test_peer_duties_are_spread_over_the_processes_each_held_once_and_taken_over_when_one_stops(postgres):
    url = postgres()
    wanted = {("push", f"urn:domain:s{i}.example.org") for i in range(5)} | \
        {("pull", f"urn:domain:p{i}.example.org") for i in range(3)}
    peers = [Peers(wanted) for _ in range(3)]
    processes = [Duties(url, lambda: (lambda: None), lambda: None, retry=0.1, peers=p) for p in peers]

    def held_once(among: list[Peers], most: int) -> bool:
        """every duty held by exactly one process, none holding more than its share"""
        held = [duty for p in among for duty in p.held]
        return sorted(held) == sorted(wanted) and all(len(p.held) <= most for p in among)

    try:
        processes[0].start()
        until(lambda: peers[0].held == wanted)  # alone: everything
        peers[0].busy = {("push", "urn:domain:s0.example.org"), ("pull", "urn:domain:p0.example.org")}
        processes[1].start()
        processes[2].start()
        until(lambda: held_once(peers, 3))  # 8 duties over 3 processes
        assert set(peers[0].busy) <= peers[0].held  # a duty under way was not let go
        assert all(peers[i].held for i in range(3))

        processes[0].stop()  # its session ends: its locks are free
        assert not peers[0].held
        until(lambda: held_once(peers[1:], 4))
    finally:
        for process in processes:
            process.stop()
