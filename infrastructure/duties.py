"""Background duties in one process of several that share a PostgreSQL store.

Several ``fedsync serve`` processes (``--workers N`` on one machine, or one
per machine behind a load balancer) can serve one node from one PostgreSQL
database: each answers the editor and federation APIs, and every write is
serialised by the store (the event table's lock, retried on conflict). The
background duties (push to each subscriber, pull from each peer with its
anti-entropy rounds, key refresh, webhook delivery) run in exactly one of
them: the process holding a PostgreSQL session advisory lock.

Every process keeps one extra connection open for this. On it, it tries
the lock every ``retry`` seconds until it holds it, and it LISTENs on
``fedsync_saved``: every save NOTIFYs that channel in its own commit, so
the process running the pusher (and every process's event streams) is
woken by a write that another process made, within milliseconds.

When the holder dies, PostgreSQL ends its session and frees the lock; the
next process to try (within ``retry``) starts the duties. When the holder
loses its connection but lives on, it stops its duties at its next check.
Between the two, for at most about ``retry``, two processes may both push
or pull: every duty is idempotent (a receiver stores a transaction once by
its gid, positions move forward only), so an overlap sends something twice
and stores nothing twice.

On SQLite there is one process: the duties start at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable

import psycopg

from domain.commit import CommitExtras
from infrastructure.persistence.database import Cursor

log = logging.getLogger(__name__)

CHANNEL = "fedsync_saved"
LOCK_KEY = 0x66656473796E63  # "fedsync": one lock per database, that is per node
Stop = Callable[[], None]


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
                 instance: str = "", retry: float = 0.5) -> None:
        self.database_url = database_url
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
            self._next_check = 0.0
        now = time.monotonic()
        if now >= self._next_check:  # every ``retry``, however many saves are announced meanwhile
            self._next_check = now + self.retry
            if self._stop is None:
                row = self._connection.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
                if row and row[0]:
                    log.info("process %d now runs the node's background duties (push, pull, keys, webhooks)",
                             os.getpid())
                    self._stop = self._start()
            else:
                self._connection.execute("SELECT 1")  # a broken connection raises: the lock is gone with it
        # Wait for another process's save (or the next check); a broken connection raises here too.
        for notice in self._connection.notifies(timeout=max(0.0, self._next_check - now), stop_after=1):
            if notice.payload != self.instance:
                self._wake()

    def _give_up(self) -> None:
        """Stop the duties (if this process ran them) and close the connection (which frees the lock)."""
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
