"""Storage: the eventsourcing recorders for SQLite, PostgreSQL and memory, extended.

The application's event store is the library's, with one addition made in
the same database transaction as every insert of events: a ``tx_index`` row
per transaction (gid -> aggregate id and version). Its primary key makes a
gid unique across the whole store (a race between two writers of one gid
fails one of them) and it answers "where is gid X" and "what is X's
sequence" by index, never by scanning. The sequence is the library's
notification id: SQLite's rowid (writers are serialised) or PostgreSQL's
``notification_id`` (inserts take a table lock, so ids increase in commit
order; failed inserts may leave gaps).

A save passes one ``CommitExtras`` (``domain/commit.py``); the recorder
hands it to its registered ``commit_hooks`` inside the insert transaction
(the gid index is the first hook; the node adds the pending area and the
pull cursor, ``hooks.py``). Then its ``in_commit`` hook runs, once the
events have their sequence numbers: the node projects there, so a save is
one commit, not two. What ``in_commit`` returns is called after the commit.
On PostgreSQL the projection is first rehearsed before the events table's
lock and, when what it read still holds under the lock, its writes go with
the insert, the whole save in one round trip where SQL can make each write
conditional (``rehearser``, ``projections/rehearsal.py``, ``one_trip.py``):
the lock's hold, which the serving processes queue for, no longer includes
the views' work nor any round trip to the client.

``Database`` gives the rest of the product (projections, queues) a small
cursor API over the same connections, with one SQL dialect: ``?``
placeholders, rewritten to ``%s`` for psycopg. One module per store:
``sqlite.py``, ``postgres.py``, ``memory.py`` (tests of the domain rules).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

import psycopg

from infrastructure.persistence.database import CommitHook, Cursor, Database
from infrastructure.persistence.postgres import PostgresDatabase, PostgresRecorder, postgres_env
from infrastructure.persistence.sqlite import SQLiteDatabase, SQLiteRecorder, sqlite_env

__all__ = ["CommitHook", "Cursor", "Database", "StoreUnreachable", "check_store", "database_for", "postgres_url",
           "setup_lock", "store_env", "store_name"]


class StoreUnreachable(Exception):
    """The database URL names a server or database that does not answer (said in one line)."""


def store_name(database_url: str | None) -> str:
    """The store, said without user or password (for messages and logs)."""
    if not database_url:
        return "SQLite in the data dir"
    return re.sub(r"//[^@/]*@", "//", database_url)


def postgres_url(database_url: str | None) -> str | None:
    """The URL if it names a PostgreSQL store, None for SQLite (several processes need PostgreSQL)."""
    return None if not database_url or database_url.startswith("sqlite") else database_url


# Events' transactions encoded by orjson, the same JSON as the library's encoder writes (transcoder.py).
TRANSCODER = {"TRANSCODER_TOPIC": "infrastructure.persistence.transcoder:EventTranscoder"}
SETUP_LOCK_KEY = 0x66656473796E6301  # advisory lock: one process at a time sets up a store's tables


@contextmanager
def setup_lock(database_url: str | None) -> Iterator[None]:
    """Hold, on PostgreSQL, the lock under which a process opening the store creates or checks its tables:
    processes starting together (``serve --workers N``) otherwise race in ``CREATE ... IF NOT EXISTS`` and
    one fails with 'tuple concurrently updated'. SQLite needs none (one process)."""
    url = postgres_url(database_url)
    if url is None:
        yield
        return
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as connection:
        connection.execute("SELECT pg_advisory_lock(%s)", (SETUP_LOCK_KEY,))
        yield  # the lock goes with the connection, whatever happens inside


def check_store(database_url: str | None, timeout: int = 5) -> None:
    """Connect once to a PostgreSQL store, within ``timeout`` seconds: a wrong URL is one clear line,
    not a 30-second wait for the connection pool. SQLite needs no check."""
    store_env(database_url, "")  # the scheme
    if not postgres_url(database_url):
        return
    try:
        psycopg.connect(database_url, connect_timeout=timeout).close()
    except psycopg.Error as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise StoreUnreachable(f"cannot open the database {store_name(database_url)}: {reason}") from None


def store_env(database_url: str | None, sqlite_path: str) -> dict[str, str]:
    """The eventsourcing environment for SQLite (default) or PostgreSQL."""
    if not database_url or database_url.startswith("sqlite"):
        return {**sqlite_env(sqlite_path), **TRANSCODER}
    scheme = urlparse(database_url).scheme
    if scheme not in ("postgresql", "postgres"):
        raise ValueError(f"unsupported database URL scheme {scheme!r}: use postgresql://")
    return {**postgres_env(database_url), **TRANSCODER}


def database_for(recorder: SQLiteRecorder | PostgresRecorder) -> Database:
    """The cursor API over the recorder's own connections."""
    if isinstance(recorder, SQLiteRecorder):
        return SQLiteDatabase(recorder)
    return PostgresDatabase(recorder)
