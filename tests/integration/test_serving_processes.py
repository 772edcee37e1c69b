"""`fedsync serve --workers N`'s processes: each listens on a socket of its own, so the kernel spreads connections.

Run with a bare app that answers its process id (``pid_app``), so that what is measured is where connections
land, not what the node does with them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from infrastructure.local_cluster import free_port

ROOT = Path(__file__).resolve().parents[2]


def pid_of(port: int) -> int:
    """The process id that answers one request on a new connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        return answer(connection)


def answer(connection: socket.socket) -> int:
    connection.sendall(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    data = b""
    while chunk := connection.recv(4096):
        data += chunk
    return int(data.split(b"\r\n\r\n", 1)[1])


def answering(port: int, count: int, excluded: frozenset[int] = frozenset()) -> set[int]:
    """Wait (bounded) until ``count`` processes, none of ``excluded``, have answered on new connections."""
    seen: set[int] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # a new process takes a second or two to start
        with contextlib.suppress(OSError, ValueError, IndexError):  # not listening yet, or cut off
            seen.add(pid_of(port))
        if len(seen - excluded) >= count:
            return seen - excluded
        time.sleep(0.02)
    raise AssertionError(f"only {seen} answered on port {port}")


@contextlib.contextmanager
def supervising(port: int, broken: Path | None = None, log: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """``serving_processes.serve`` of ``pid_app`` with two processes on ``port``, stopped at the end; its stderr
    to ``log``. A process imports the app only while ``broken`` does not exist."""
    options = {"app": "tests.integration.pid_app:app", "host": "127.0.0.1", "port": port, "log_level": "warning"}
    env = {**os.environ, "FEDSYNC_TEST_BREAK_PID_APP": str(broken)} if broken else None
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(log.open("wb")) if log else None
        supervisor = subprocess.Popen([sys.executable, "-c", f"import sys; from api import serving_processes; "
                                                           f"sys.exit(serving_processes.serve({options!r}, 2))"],
                                      cwd=ROOT, env=env, stderr=out)
    try:
        yield supervisor
    finally:
        if supervisor.poll() is None:
            supervisor.terminate()
            supervisor.wait(timeout=60)


def logged(log: Path, text: str) -> bool:
    """Wait (bounded) until ``text`` is in the log."""
    deadline = time.monotonic() + 60
    while text not in log.read_text() and time.monotonic() < deadline:  # bounded
        time.sleep(0.05)
    return text in log.read_text()


@pytest.fixture
def two_processes() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    with supervising(port) as supervisor:
        yield supervisor, port


def test_each_process_takes_a_share_of_a_burst_of_connections(two_processes):
    _, port = two_processes
    answering(port, 2)
    # 32 connections opened at once, as 16 or 32 editors (or a load balancer's pool) do: with one socket shared
    # by both processes, the first to wake accepted nearly all of them (15 of 16 measured).
    connections = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(32)]
    try:
        shares = Counter(answer(connection) for connection in connections)
    finally:
        for connection in connections:
            connection.close()
    assert len(shares) == 2, shares
    assert min(shares.values()) >= 5, shares  # by the kernel's hash; fewer: p < 0.00002 for a fair split


def test_a_process_that_dies_is_replaced_and_a_stop_ends_them_all(two_processes):
    supervisor, port = two_processes
    first, second = sorted(answering(port, 2))
    os.kill(first, signal.SIGKILL)
    replaced = answering(port, 2, excluded=frozenset({first}))
    assert second in replaced and len(replaced) == 2
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=60) == 0
    for pid in replaced:  # each was waited for by the supervisor: gone, not left running or as a zombie
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(OSError):
        pid_of(port)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def gone(pids: set[int]) -> bool:
    """Wait (bounded) until none of ``pids`` runs: each was stopped and waited for."""
    deadline = time.monotonic() + 60
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:  # bounded
        time.sleep(0.05)
    return not any(alive(pid) for pid in pids)


def test_sighup_restarts_the_processes_one_at_a_time_without_leaving_the_port_unanswered(two_processes):
    """SIGHUP ended the parent at once and left its workers serving, orphaned, holding the port."""
    supervisor, port = two_processes
    old = answering(port, 2)
    unanswered = 0
    supervisor.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 60
    seen: set[int] = set()
    while time.monotonic() < deadline and len(seen - old) < 2:  # bounded: until both new processes answered
        try:
            seen.add(pid_of(port))
        except (OSError, ValueError, IndexError):  # refused, reset or cut off: not answered
            unanswered += 1
        time.sleep(0.01)
    assert len(seen - old) == 2 and gone(old)
    # A connection the kernel queued at an old process in the instant before it closed its socket is reset
    # (the module says so): one such per stopped process at most, never a stretch of refusals.
    assert supervisor.poll() is None and unanswered <= 2, unanswered
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=60) == 0 and gone(seen - old)


def test_sigttin_adds_a_process_and_sigttou_stops_one(two_processes):
    supervisor, port = two_processes
    first = answering(port, 2)
    supervisor.send_signal(signal.SIGTTIN)
    third = answering(port, 1, excluded=frozenset(first))
    supervisor.send_signal(signal.SIGTTOU)  # the newest goes
    assert gone(third) and all(alive(pid) for pid in first)
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=60) == 0 and gone(first)


def test_a_restart_whose_new_process_cannot_start_keeps_the_old_ones_serving(tmp_path):
    broken, log, port = tmp_path / "broken", tmp_path / "supervisor.log", free_port()
    with supervising(port, broken, log) as supervisor:
        old = answering(port, 2)
        broken.touch()  # a new process now fails as it imports the app
        supervisor.send_signal(signal.SIGHUP)
        assert logged(log, "did not start") and "the others keep serving" in log.read_text()
        assert answering(port, 2) == old and supervisor.poll() is None
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=60) == 0 and gone(old)


def test_the_processes_stop_when_their_parent_is_killed(two_processes):
    supervisor, port = two_processes
    workers = answering(port, 2)
    supervisor.kill()  # SIGKILL: no handler runs, the workers are orphaned
    supervisor.wait(timeout=60)
    assert gone(workers)
    with pytest.raises(OSError):
        pid_of(port)


def test_a_replacement_that_cannot_start_is_tried_again_while_the_other_serves(tmp_path):
    """A worker that dies while the store is unreachable gets a replacement that cannot start: that stopped
    every process, an outage that outlasted the cause."""
    broken, log, port = tmp_path / "broken", tmp_path / "supervisor.log", free_port()
    with supervising(port, broken, log) as supervisor:
        first, second = sorted(answering(port, 2))
        broken.touch()
        os.kill(first, signal.SIGKILL)
        assert logged(log, "trying again in 2 s") and "trying again in 1 s" in log.read_text()
        assert supervisor.poll() is None and pid_of(port) == second
        broken.unlink()  # the cause is gone: the next try starts a process
        assert len(answering(port, 2, excluded=frozenset({first}))) == 2
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=60) == 0


def test_a_process_that_cannot_start_at_first_stops_the_others_and_serve_fails(tmp_path):
    broken, log = tmp_path / "broken", tmp_path / "supervisor.log"
    broken.touch()
    with supervising(free_port(), broken, log) as supervisor:
        assert supervisor.wait(timeout=120) == 1 and "could not start" in log.read_text()
