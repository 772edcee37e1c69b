"""Rebuilding the read models while the node serves: built beside the live ones, swapped in one commit.

``fedsync projections rebuild`` used to empty the live views and replay into
them: readers saw a half-built state (404 for existing items), a running
server's projector raced the rebuild, and on PostgreSQL the race left
duplicate rows that failed every later write and every later start.

Here the views are built from the events into *shadow* tables that nothing
else reads (on SQLite a file beside the store, on PostgreSQL a schema of
its own), with the same projector code as ever. Then one transaction on the
live store takes the store's write lock, replaces each view's rows with the
shadow's, sets the views' position to where the shadow got, and projects
the events stored meanwhile. Readers see the old views until that commit
and the rebuilt ones after it; writers wait only for the swap; a server's
projector, if it projected meanwhile, finds the position moved and
re-reads it (its compare-and-set fails), so nothing is projected twice.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from infrastructure.persistence import Cursor, Database
from infrastructure.persistence.postgres import PostgresCursor
from infrastructure.persistence.sqlite import SQLiteCursor
from projections.projector import REBUILD_BATCH, Projector, decode


@dataclass(frozen=True)
class RebuildReport:
    built: int  # events replayed into the shadow views
    caught_up: int  # events stored during the build, projected in the swap
    position: int  # the views' position after the swap


class _Connection(Database):
    """The cursor API on one plain connection of our own (the shadow views, or the swap)."""

    def __init__(self, connection: Any, cursor: Callable[[Any], Cursor], dialect: str, events_table: str,
                 sequence_column: str) -> None:
        self.connection, self._cursor = connection, cursor
        self.events_table = events_table
        self.dialect, self.sequence_column = dialect, sequence_column  # type: ignore[misc]

    @contextmanager
    def transaction(self, *, commit: bool = True) -> Iterator[Cursor]:
        self.connection.execute("BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN")
        try:
            yield self._cursor(self.connection.cursor())
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT" if commit else "ROLLBACK")


def rebuild(live: Database, projector: Projector, *, sqlite_path: Path, database_url: str | None,
            progress: Callable[[int], None] | None = None) -> RebuildReport:
    """Rebuild every view beside the live ones, then swap them in (the module docstring says how)."""
    with _shadow(live, sqlite_path, database_url) as (shadow, swap, where):
        builder = Projector(shadow, projector.recorder, search_language=projector.search.language)
        builder.create_tables()
        built = builder.catch_up(progress, batch=REBUILD_BATCH)
        return _swap(swap, where, projector, builder.position(), built)


@contextmanager
def _shadow(live: Database, sqlite_path: Path,
            database_url: str | None) -> Iterator[tuple[Database, _Connection, str]]:
    """A connection on empty shadow views, one on the live store that can read them, and where they are."""
    if live.dialect == "sqlite":
        path = sqlite_path.with_name(f"rebuild-{uuid.uuid4().hex[:8]}.sqlite")
        shadow = _sqlite(path, live)
        swap = _sqlite(sqlite_path, live)
        try:
            swap.connection.execute("ATTACH DATABASE ? AS shadow", (str(path),))
            yield shadow, swap, "shadow"
        finally:
            shadow.connection.close()
            swap.connection.close()
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    assert database_url is not None
    schema = f"fedsync_rebuild_{uuid.uuid4().hex[:8]}"
    shadow, swap = _postgres(database_url, live), _postgres(database_url, live)
    try:
        shadow.connection.execute(f"CREATE SCHEMA {schema}")
        shadow.connection.execute(f"SET search_path TO {schema}")
        swap.connection.execute("SET lock_timeout = '30s'")
        yield shadow, swap, schema
    finally:
        shadow.connection.close()
        swap.connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        swap.connection.close()


def _sqlite(path: Path, live: Database) -> _Connection:
    connection = sqlite3.connect(path, isolation_level=None, timeout=60, check_same_thread=False)
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA journal_mode = WAL")
    return _Connection(connection, SQLiteCursor, "sqlite", live.events_table, live.sequence_column)


def _postgres(database_url: str, live: Database) -> _Connection:
    connection = psycopg.connect(database_url, autocommit=True, row_factory=dict_row)
    return _Connection(connection, PostgresCursor, "postgres", live.events_table, live.sequence_column)


def _swap(swap: _Connection, shadow: str, projector: Projector, position: int, built: int) -> RebuildReport:
    caught_up = 0
    with swap.transaction() as cur:
        if swap.dialect == "postgres":  # what every insert of events takes: no event is stored meanwhile
            cur.execute(f"LOCK TABLE {swap.events_table} IN EXCLUSIVE MODE")
        for table in projector.tables:  # (on SQLite with the rowids: the search index's rows name its rowids)
            columns = ", ".join([*(["rowid"] if swap.dialect == "sqlite" else []), *cur.columns(table)])
            cur.execute(f"DELETE FROM {table}")
            cur.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {shadow}.{table}")
        while True:  # the events stored while the shadow was built (none can be stored now)
            notifications = projector.recorder.select_notifications(position, REBUILD_BATCH,
                                                                   inclusive_of_start=False)
            if not notifications:
                break
            projector.apply(cur, [(n.id, decode(n.state)) for n in notifications])
            position, caught_up = notifications[-1].id, caught_up + len(notifications)
        cur.execute("UPDATE view_tracking SET position = ? WHERE name = 'views'", (position,))
    projector.forget_position()
    return RebuildReport(built, caught_up, position)

