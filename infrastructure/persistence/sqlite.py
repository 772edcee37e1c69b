"""SQLite: the embedded default store (one file in the node's data dir)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteDatastore,
    SQLiteTransaction,
)

from infrastructure.persistence.database import CommitHook, Cursor, Database, HookedRecorder, chunks
from infrastructure.persistence.hooks import write_index


def sqlite_env(path: str) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": path,
        "SQLITE_LOCK_TIMEOUT": "30",
        "APPLICATION_RECORDER_TOPIC": "infrastructure.persistence.sqlite:SQLiteRecorder",
    }


class SQLiteCursor(Cursor):
    dialect = "sqlite"

    def _sql(self, sql: str) -> str:
        return sql

    def uuid(self, value: UUID) -> str:
        return value.hex

    @property
    def rowcount(self) -> int:
        return getattr(self.raw, "sqlite_cursor", self.raw).rowcount  # the library may wrap sqlite3's cursor

    def columns(self, table: str) -> list[str]:
        return [row["name"] for row in self.execute(f"PRAGMA table_info({table})").fetchall()]


class GuardedPool(SQLiteConnectionPool):
    """The library's pool, which gives back the writer's turn (or a reader's place) when a request got no connection.

    ``get_connection`` takes the writer's lock (a reader: counts itself) before it waits for a free
    connection, and eventsourcing 9.5 keeps it when that wait times out: every later write then timed out
    "waiting for return of writer", and the node could not store anything until it restarted
    (``tests/integration/test_sqlite_pool.py``). A busy moment, every connection held by readers for the
    pool's timeout, was enough.
    """

    _taken = threading.local()  # per thread: whether this request holds what ``is_writer`` asked for

    def get_connection(self, timeout: float | None = None, *, is_writer: bool | None = None) -> SQLiteConnection:
        self._taken.value = False
        try:
            return super().get_connection(timeout, is_writer=is_writer)
        except BaseException:
            if self._taken.value:
                self._give_back(is_writer)
            raise

    def _get_connection(self, timeout: float = 0.0) -> SQLiteConnection:
        self._taken.value = True  # the library calls this once it holds the writer's lock or counted the reader
        return super()._get_connection(timeout)

    def _give_back(self, is_writer: bool | None) -> None:  # as the library's ``put_connection`` does
        if is_writer is True:
            self._num_writers -= 1
            self._writer_lock.release()
        elif is_writer is False:
            with self._no_readers:
                self._num_readers -= 1
                if self._num_readers == 0 and self._mutually_exclusive_read_write:
                    self._no_readers.notify()


class SQLiteRecorder(HookedRecorder, SQLiteApplicationRecorder):
    """The library's SQLite recorder plus the gid index and the commit hooks."""

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events") -> None:
        datastore.pool.__class__ = GuardedPool  # the library's factory makes the pool: its class is swapped
        super().__init__(datastore, events_table_name)
        self.commit_hooks: list[CommitHook] = [write_index]

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            "CREATE TABLE IF NOT EXISTS tx_index ("
            "gid TEXT PRIMARY KEY, originator_id TEXT NOT NULL, "
            "originator_version INTEGER NOT NULL)",
        ]

    def _insert_events(self, c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events)
        cursor = SQLiteCursor(c)
        self._write_extras(cursor, kwargs)
        self._run_in_commit(cursor, ids, stored_events, kwargs)
        return ids

    def existing(self, ids: Sequence[UUID]) -> set[UUID]:
        """Which of these aggregates have events stored (one query per 500 ids)."""
        found: set[UUID] = set()
        with self.datastore.transaction(commit=False) as c:
            for chunk in chunks([i.hex for i in ids], 500):
                c.execute(f"SELECT DISTINCT originator_id FROM {self.events_table_name} "
                          f"WHERE originator_id IN ({','.join('?' * len(chunk))})", chunk)
                found.update(UUID(row["originator_id"]) for row in c.fetchall())
        return found

    def stored_after(self, position: int, limit: int) -> list[tuple[int, UUID]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT rowid, originator_id FROM {self.events_table_name} WHERE rowid > ? "
                      "ORDER BY rowid LIMIT ?", (position, limit))
            return [(row[0], UUID(row[1])) for row in c.fetchall()]

    def locate_sql(self, count: int) -> str:
        return (
            "SELECT t.gid AS gid, e.rowid AS seq, e.originator_id AS originator_id, "
            "e.originator_version AS originator_version, e.topic AS topic, e.state AS state "
            f"FROM tx_index t JOIN {self.events_table_name} e "
            "ON e.originator_id = t.originator_id AND e.originator_version = t.originator_version "
            f"WHERE t.gid IN ({','.join('?' * count)})"
        )

    def locate(self, gids: Sequence[str]) -> list[dict[str, Any]]:
        """Stored events of the given transaction gids (absent gids are left out)."""
        found: list[dict[str, Any]] = []
        with self.datastore.transaction(commit=False) as c:
            for chunk in chunks(list(gids), 500):
                c.execute(self.locate_sql(len(chunk)), chunk)
                found.extend(dict(row) for row in c.fetchall())
        return found


class _ImmediateTransaction(SQLiteTransaction):
    """The library's SQLite transaction (same commit, rollback and error mapping), begun IMMEDIATE."""

    def __enter__(self) -> Any:
        cursor = self.connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        return cursor


# Connections kept open between uses. The library keeps 5 and closes any returned beyond that, so 16 editors at
# once opened and closed a connection (with its PRAGMAs) for most reads: 10 % of the edits/s (bench/api.py). Each
# kept connection holds its own page cache (up to 2 MB).
POOL_SIZE = 16


class SQLiteDatabase(Database):
    dialect = "sqlite"
    sequence_column = "rowid"
    in_process = True

    recorder: SQLiteRecorder

    def __init__(self, recorder: SQLiteRecorder) -> None:
        super().__init__(recorder)
        recorder.datastore.pool.pool_size = POOL_SIZE  # not a setting of the library's SQLite factory

    @contextmanager
    def transaction(self, *, commit: bool = True) -> Iterator[Cursor]:
        datastore = self.recorder.datastore
        if not commit:
            with datastore.transaction(commit=False) as c:
                yield SQLiteCursor(c)
            return
        # BEGIN IMMEDIATE: the write lock first, waiting up to the busy timeout. After a
        # deferred BEGIN a transaction that reads first (CREATE TABLE IF NOT EXISTS on an
        # existing table is a read) cannot take the write lock once another process has
        # committed meanwhile: SQLite refuses at once with "database is locked".
        with datastore.get_connection(commit=True) as connection, \
                _ImmediateTransaction(connection, commit=True) as c, c:
            yield SQLiteCursor(c)
