"""Background duties in one process of several that share a PostgreSQL store.

Several ``fedsync serve`` processes (``--workers N`` on one machine, or one
per machine behind a load balancer) can serve one node from one PostgreSQL
database: each answers the editor and federation APIs, and every write is
serialised by the store (the event table's lock, retried on conflict). The
background duties run in exactly one process each at a time, chosen by
PostgreSQL session advisory locks:

- **Per peer**: the push to each subscriber and the pull from each peer
  (with its anti-entropy rounds) are duties of their own, spread over the
  processes: each process holds at most its share (the duties divided by
  the processes that take part, rounded up) and pushes or pulls only what it
  holds. Every process holds a *member* lock while it takes part, so the
  processes count each other in ``pg_locks``; one that holds more than its
  share (another process joined) lets the surplus go, between two pushes.
- **Node-wide**: key refresh, retrying held transactions and webhook
  delivery run in the process that holds the node's lock.

Every process keeps one extra connection open for this. On it, every
``retry`` seconds, it tries the node's lock until it holds it and takes or
lets go of peer duties; and it LISTENs on ``fedsync_saved``: every save
NOTIFYs that channel in its own commit, so the pushers of every process
(and every process's event streams) are woken by a write that another
process made, within milliseconds.

When a process dies, PostgreSQL ends its session and frees its locks; the
others take its duties at their next check (within ``retry``). When a
process loses its connection but lives on, it stops its duties at its next
check. Between the two, for at most about ``retry``, two processes may both
push to or pull from one peer: every duty is idempotent (a receiver stores a
transaction once by its gid, positions move forward only), so an overlap
sends something twice and stores nothing twice.

On SQLite there is one process: it runs every duty at once.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import threading
import time
import zlib
from collections.abc import Callable
from typing import Protocol

import psycopg

from domain.commit import CommitExtras
from infrastructure.persistence.database import Cursor

log = logging.getLogger(__name__)

CHANNEL = "fedsync_saved"
LOCK_KEY = 0x66656473796E63  # "fedsync": one lock per database, that is per node
# Two-key advisory locks (a key space apart from LOCK_KEY's): (class, crc32 of the peer's name) per peer
# duty, (MEMBER, a random number) per process that takes part.
CLASSES = {"push": 0x70757368, "pull": 0x70756C6C}  # "push", "pull"
MEMBER = 0x6D656D62  # "memb"
Stop = Callable[[], None]
Duty = tuple[str, str]  # ("push" | "pull", peer name)


class PeerDuties(Protocol):
    """Who holds which per-peer duty, as the process that runs them sees it (``sync.SyncWorkers``)."""

    def wanted(self) -> set[Duty]:
        """The per-peer duties there are now (a push per subscriber, a pull per peer it accepts from)."""

    def take(self, duty: Duty) -> None:
        """This process holds ``duty`` from now on."""

    def release(self, duty: Duty) -> bool:
        """Stop holding ``duty`` unless it is under way; True when let go."""

    def release_all(self) -> None:
        """The locks are gone: hold nothing from now on (what is under way ends on its own)."""


def notify_saved(instance: str) -> Callable[[Cursor, CommitExtras], None]:
    """A commit hook (PostgreSQL): tell every process of this node, on commit, that transactions were stored
    (``instance`` names this process, whose own listeners the save wakes already)."""
    def hook(cursor: Cursor, extras: CommitExtras) -> None:
        if extras.index:
            cursor.execute("SELECT pg_notify(?, ?)", (CHANNEL, instance))
    return hook


class Duties:
    """Runs ``start`` (which returns how to stop what it started) while this process holds the duties."""

    def __init__(self, database_url: str | None, start: Callable[[], Stop], wake: Callable[[], None], *,
                 instance: str = "", retry: float = 0.5, peers: PeerDuties | None = None) -> None:
        self.database_url = database_url
        self.peers = peers  # per-peer duties to take a share of (None: the node-wide lock's holder runs them)
        self._held: set[Duty] = set()
        self.instance = instance  # saves announced under this name are this process's own: not woken again
        self._next_check = 0.0
        self._start = start
        self._wake = wake
        self.retry = retry
        self._stop: Stop | None = None
        self._connection: psycopg.Connection | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fedsync-duties", daemon=True)

    @property
    def held(self) -> bool:
        return self._stop is not None

    def start(self) -> None:
        if self.database_url is None:  # SQLite: this is the only process
            self._stop = self._start()
            return
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self._give_up()

    def _run(self) -> None:
        while not self._stopping.is_set():  # bounded by stop(): one step per ``retry`` at most
            try:
                self._step()
            except psycopg.Error as error:
                log.warning("the store connection that holds or awaits the duties failed (%s); retrying in %g s",
                            " ".join(str(error).split())[:200], self.retry)
            except Exception:  # never hold the lock without running the duties: let another process have them
                log.exception("the background duties failed; this process lets them go and tries again")
            else:
                continue
            self._give_up()
            self._stopping.wait(self.retry)

    def _step(self) -> None:
        if self._connection is None:
            self._connection = psycopg.connect(self.database_url, autocommit=True, connect_timeout=10)
            self._connection.execute(f"LISTEN {CHANNEL}")
            for _ in range(8 if self.peers is not None else 0):  # a member lock of its own (bounded retries)
                row = self._connection.execute("SELECT pg_try_advisory_lock(%s::int4, %s::int4)",
                                               (MEMBER, random.randrange(-2**31, 2**31))).fetchone()
                if row and row[0]:
                    break
            self._next_check = 0.0
        now = time.monotonic()
        if now >= self._next_check:  # every ``retry``, however many saves are announced meanwhile
            self._next_check = now + self.retry
            if self._stop is None:
                row = self._connection.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
                if row and row[0]:
                    log.info("process %d now runs the node's background duties (%s)", os.getpid(),
                             "keys, held transactions, webhooks" if self.peers is not None else "all of them")
                    self._stop = self._start()
            else:
                self._connection.execute("SELECT 1")  # a broken connection raises: the lock is gone with it
            if self.peers is not None:
                self._balance(self._connection, self.peers)
        # Wait for another process's save (or the next check); a broken connection raises here too.
        for notice in self._connection.notifies(timeout=max(0.0, self._next_check - now), stop_after=1):
            if notice.payload != self.instance:
                self._wake()

    def _balance(self, connection: psycopg.Connection, peers: PeerDuties) -> None:
        """Take free peer duties up to this process's share; let go of those past it and of those gone."""
        wanted = peers.wanted()
        # The two-key advisory locks granted in this database: the members, and the duties taken (by anyone),
        # so that only free duties are tried (not every other process's, twice a second).
        locks = connection.execute(
            "SELECT classid::int8, objid::int8 FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND objsubid = 2 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchall()
        members = sum(1 for classid, _ in locks if classid == MEMBER)
        taken = {(classid, objid) for classid, objid in locks}
        share = math.ceil(len(wanted) / max(1, members))
        for duty in sorted(self._held, key=lambda duty: (duty in wanted, duty)):  # the ones gone first
            if (duty not in wanted or len(self._held) > share) and peers.release(duty):
                connection.execute("SELECT pg_advisory_unlock(%s::int4, %s::int4)", _keys(duty))
                self._held.discard(duty)
        # Another process's locks (one of ours whose name shares its crc32 is tried: locks are re-entrant).
        others = taken - {_as_oids(_keys(duty)) for duty in self._held}
        for duty in sorted(wanted - self._held):
            if len(self._held) >= share:
                break
            if _as_oids(_keys(duty)) in others:
                continue
            row = connection.execute("SELECT pg_try_advisory_lock(%s::int4, %s::int4)", _keys(duty)).fetchone()
            if row and row[0]:
                self._held.add(duty)
                peers.take(duty)
                log.info("process %d now runs the %s %s %s", os.getpid(), duty[0],
                         "to" if duty[0] == "push" else "from", duty[1])

    def _give_up(self) -> None:
        """Stop the duties (if this process ran them) and close the connection (which frees the locks)."""
        if self.peers is not None and self._held:
            self.peers.release_all()
        self._held.clear()
        stop, self._stop = self._stop, None
        if stop is not None:
            log.info("this process stops running the background duties")
            try:
                stop()
            except Exception:  # noqa: BLE001 - still close the connection below
                log.exception("stopping the background duties failed")
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(psycopg.Error):
                connection.close()


def _as_oids(keys: tuple[int, int]) -> tuple[int, int]:
    """Two int4 lock keys as ``pg_locks`` shows them (oids: unsigned)."""
    return keys[0] % 2**32, keys[1] % 2**32


def _keys(duty: Duty) -> tuple[int, int]:
    """The two int4 keys of a peer duty's advisory lock (two names with one crc32 share a lock: one process
    then holds both)."""
    return CLASSES[duty[0]], zlib.crc32(duty[1].encode()) - 2**31
