"""Storage: the eventsourcing recorders for SQLite and PostgreSQL, extended.

The application's event store is the library's, with one addition made in
the same database transaction as every insert of events: a ``tx_index`` row
per transaction (gid -> aggregate id and version). Its primary key makes a
gid unique across the whole store (a race between two writers of one gid
fails one of them) and it answers "where is gid X" and "what is X's
sequence" by index, never by scanning. The sequence is the library's
notification id: SQLite's rowid (writers are serialised) or PostgreSQL's
``notification_id`` (inserts take a table lock, so ids increase in commit
order; failed inserts may leave gaps).

Each recorder also has an ``in_commit`` hook: called inside every insert
transaction, after the events got their sequence numbers, with a cursor and
the new (sequence, state) pairs. The node uses it to project local edits
and received batches in the commit that stores them (one commit instead of
two). What the hook returns is called once the transaction has committed.

``Database`` gives the rest of the product (projections, queues) a small
cursor API over the same connections, with one SQL dialect: ``?``
placeholders, rewritten to ``%s`` for psycopg.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlparse
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteTransaction
from psycopg.sql import SQL

APP_NAME = "fedsync"
IndexRow = tuple[str, UUID, int]  # gid, originator id, originator version
# Called in the insert transaction with the new (sequence, state) pairs; returns what to
# call after the commit (or None).
InCommit = Callable[["Cursor", list[tuple[int, bytes]]], Callable[[], None] | None]


class InCommitHook:
    """The ``in_commit`` plumbing shared by both recorders."""

    in_commit: InCommit | None = None

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        committed: list[Callable[[], None]] = []
        ids = super().insert_events(stored_events, committed=committed, **kwargs)  # type: ignore[misc]
        for callback in committed:
            callback()
        return ids

    def _run_in_commit(self, cursor: Cursor, ids: Sequence[int] | None, stored_events: Sequence[StoredEvent],
                       committed: list[Callable[[], None]] | None) -> None:
        if self.in_commit is None or not ids:
            return
        callback = self.in_commit(cursor, [(i, e.state) for i, e in zip(ids, stored_events, strict=True)])
        if committed is not None:
            # A retried insert (PostgreSQL reconnects) calls the hook again: keep the last one only.
            committed[:] = [callback] if callback is not None else []


class SQLiteRecorder(InCommitHook, SQLiteApplicationRecorder):
    """The library's SQLite recorder plus the gid index."""

    dialect = "sqlite"

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            "CREATE TABLE IF NOT EXISTS tx_index ("
            "gid TEXT PRIMARY KEY, originator_id TEXT NOT NULL, "
            "originator_version INTEGER NOT NULL)",
        ]

    def _insert_events(self, c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any):
        ids = super()._insert_events(c, stored_events)
        rows = [(gid, oid.hex, version) for gid, oid, version in kwargs.get("tx_index", ())]
        cursor = Cursor(c, self.dialect)
        cursor.executemany("INSERT INTO tx_index VALUES (?, ?, ?)", rows)
        write_side_effects(cursor, kwargs)
        self._run_in_commit(cursor, ids, stored_events, kwargs.get("committed"))
        return ids

    def locate_sql(self, count: int) -> str:
        marks = ",".join("?" * count)
        return (
            "SELECT t.gid AS gid, e.rowid AS seq, e.originator_id AS originator_id, "
            "e.originator_version AS originator_version, e.topic AS topic, e.state AS state "
            f"FROM tx_index t JOIN {self.events_table_name} e "
            "ON e.originator_id = t.originator_id AND e.originator_version = t.originator_version "
            f"WHERE t.gid IN ({marks})"
        )

    def existing(self, ids: Sequence[UUID]) -> set[UUID]:
        """Which of these aggregates have events stored (one query per 500 ids)."""
        found: set[UUID] = set()
        with self.datastore.transaction(commit=False) as c:
            for chunk in _chunks([i.hex for i in ids], 500):
                c.execute(f"SELECT DISTINCT originator_id FROM {self.events_table_name} "
                          f"WHERE originator_id IN ({','.join('?' * len(chunk))})", chunk)
                found.update(UUID(row["originator_id"]) for row in c.fetchall())
        return found

    def locate(self, gids: Sequence[str]) -> list[dict[str, Any]]:
        """Stored events of the given transaction gids (absent gids are left out)."""
        found: list[dict[str, Any]] = []
        with self.datastore.transaction(commit=False) as c:
            for chunk in _chunks(list(gids), 500):
                c.execute(self.locate_sql(len(chunk)), chunk)
                found.extend(dict(row) for row in c.fetchall())
        return found


class PostgresRecorder(InCommitHook, PostgresApplicationRecorder):
    """The library's PostgreSQL recorder plus the gid index."""

    dialect = "postgres"

    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS tx_index ("
                "gid TEXT PRIMARY KEY, originator_id UUID NOT NULL, "
                "originator_version BIGINT NOT NULL)"
            )
        )

    def _insert_events(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        # Runs in the same transaction, just before the events are inserted.
        cursor = Cursor(curs, self.dialect)
        cursor.executemany("INSERT INTO tx_index VALUES (?, ?, ?)", list(kwargs.get("tx_index", ())))
        write_side_effects(cursor, kwargs)

    def _fetch_ids_after_insert_events(self, curs: Any, stored_events: Sequence[StoredEvent],
                                       **kwargs: Any) -> Sequence[int] | None:
        # Still in the transaction (and its pipeline), the table lock held: every lower
        # sequence number belongs to a settled transaction.
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        self._run_in_commit(PipelineCursor(curs.connection), ids, stored_events, kwargs.get("committed"))
        return ids

    def locate_sql(self) -> str:
        return (
            "SELECT t.gid AS gid, e.notification_id AS seq, e.originator_id AS originator_id, "
            "e.originator_version AS originator_version, e.topic AS topic, e.state AS state "
            f"FROM tx_index t JOIN {self.events_table_name} e "
            "ON e.originator_id = t.originator_id AND e.originator_version = t.originator_version "
            "WHERE t.gid = ANY(%s)"
        )

    def existing(self, ids: Sequence[UUID]) -> set[UUID]:
        """Which of these aggregates have events stored (one query)."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT DISTINCT originator_id FROM {self.events_table_name} "
                      "WHERE originator_id = ANY(%s)", (list(ids),))
            return {row["originator_id"] for row in c.fetchall()}

    def locate(self, gids: Sequence[str]) -> list[dict[str, Any]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(self.locate_sql(), (list(gids),))
            return [dict(row) for row in c.fetchall()]


def write_side_effects(cursor: Cursor, kwargs: dict[str, Any]) -> None:
    """Rows that must commit with the events (or with nothing stored at all).

    ``hold``: received transactions whose parents are missing, kept in the
    pending area; ``resolved``: pending gids now stored; ``pull_cursor``:
    (peer, gid) the puller has applied up to.
    """
    cursor.executemany(
        "INSERT INTO pending (gid, sender, tx, missing, received_at, attempts) VALUES (?, ?, ?, ?, ?, 1) "
        "ON CONFLICT (gid) DO UPDATE SET missing = excluded.missing, attempts = pending.attempts + 1",
        list(kwargs.get("hold", ())),
    )
    cursor.executemany("DELETE FROM pending WHERE gid = ?", [(g,) for g in kwargs.get("resolved", ())])
    if kwargs.get("pull_cursor"):
        peer, gid = kwargs["pull_cursor"]
        cursor.execute("UPDATE peers SET pull_cursor = ? WHERE name = ?", (gid, peer))


def _chunks(values: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


class _ImmediateTransaction(SQLiteTransaction):
    """The library's SQLite transaction (same commit, rollback and error mapping), begun IMMEDIATE."""

    def __enter__(self) -> Any:
        cursor = self.connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        return cursor


class Database:
    """A minimal cursor API over the event store's own connections."""

    def __init__(self, recorder: SQLiteRecorder | PostgresRecorder) -> None:
        self.recorder = recorder
        self.dialect = recorder.dialect
        self.events_table = recorder.events_table_name
        self.sequence_column = "rowid" if self.dialect == "sqlite" else "notification_id"

    @contextmanager
    def transaction(self, *, commit: bool = True) -> Iterator[Cursor]:
        if self.dialect == "sqlite" and commit:
            # BEGIN IMMEDIATE: the write lock first, waiting up to the busy timeout. After a
            # deferred BEGIN a transaction that reads first (CREATE TABLE IF NOT EXISTS on an
            # existing table is a read) cannot take the write lock once another process has
            # committed meanwhile: SQLite refuses at once with "database is locked".
            with self.recorder.datastore.get_connection(commit=True) as connection, \
                    _ImmediateTransaction(connection, commit=True) as c, c:
                yield Cursor(c, self.dialect)
            return
        with self.recorder.datastore.transaction(commit=commit) as c:
            yield Cursor(c, self.dialect)

    def read(self) -> Any:
        return self.transaction(commit=False)


class Cursor:
    """DB-API cursor with one placeholder style (``?``) for both databases."""

    def __init__(self, raw: Any, dialect: str) -> None:
        self.raw = raw
        self.dialect = dialect

    def _sql(self, sql: str) -> str:
        return sql if self.dialect == "sqlite" else sql.replace("?", "%s")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        self.raw.execute(self._sql(sql), params)
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.raw.executemany(self._sql(sql), rows)

    def fetchone(self) -> dict[str, Any] | None:
        row = self.raw.fetchone()
        return None if row is None else dict(row)

    def fetchall(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self.raw.fetchall()]

    @property
    def rowcount(self) -> int:
        raw = getattr(self.raw, "sqlite_cursor", self.raw)
        return raw.rowcount


class PipelineCursor(Cursor):
    """A ``Cursor`` on a psycopg connection in pipeline mode: a new cursor per statement.

    In pipeline mode results queue up per cursor; a fetch after an earlier
    statement whose result was never fetched would read that result instead.
    """

    def __init__(self, connection: Any) -> None:
        super().__init__(connection.cursor(), "postgres")
        self.connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        self.raw = self.connection.cursor()
        return super().execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.raw = self.connection.cursor()
            super().executemany(sql, rows)


def store_env(database_url: str | None, sqlite_path: str) -> dict[str, str]:
    """The eventsourcing environment for SQLite (default) or PostgreSQL."""
    if not database_url or database_url.startswith("sqlite"):
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": sqlite_path,
            "SQLITE_LOCK_TIMEOUT": "30",
            "APPLICATION_RECORDER_TOPIC": "infrastructure.persistence:SQLiteRecorder",
        }
    url = urlparse(database_url)
    if url.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"unsupported database URL scheme {url.scheme!r}: use postgresql://")
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": url.path.lstrip("/") or "postgres",
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": unquote(url.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(url.password or ""),
        "POSTGRES_POOL_SIZE": "8",
        "POSTGRES_MAX_OVERFLOW": "8",
        "POSTGRES_LOCK_TIMEOUT": "30",
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "60",
        "APPLICATION_RECORDER_TOPIC": "infrastructure.persistence:PostgresRecorder",
    }
