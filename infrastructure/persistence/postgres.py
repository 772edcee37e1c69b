"""PostgreSQL: the production store, through psycopg 3."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlparse
from uuid import UUID

import orjson
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg.pq import TransactionStatus
from psycopg.sql import SQL, Identifier

from domain.commit import CommitExtras
from infrastructure.persistence import one_trip
from infrastructure.persistence.database import CommitHook, Cursor, Database, HookedRecorder, transactions_of
from infrastructure.persistence.hooks import write_index

log = logging.getLogger(__name__)


def postgres_env(database_url: str) -> dict[str, str]:
    url = urlparse(database_url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": url.path.lstrip("/") or "postgres",
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": unquote(url.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(url.password or ""),
        # 4 connections held open, up to 16 while busy: a node process (or a command, or a test's handle on a
        # store) that held 8 open from its start made a few dozen processes fill PostgreSQL's 100
        "POSTGRES_POOL_SIZE": "4",
        "POSTGRES_MAX_OVERFLOW": "12",
        "POSTGRES_LOCK_TIMEOUT": "30",
        "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "60",
        "APPLICATION_RECORDER_TOPIC": "infrastructure.persistence.postgres:PostgresRecorder",
    }


_CREATE_INDEX = re.compile(r"\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+IF\s+NOT\s+EXISTS\s+(\w+)", re.IGNORECASE)


def insert_rows_sql(table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], tail: str = "",
                    computed: Mapping[str, str] | None = None, *, chosen: Sequence[str] | None = None,
                    where: str = "") -> tuple[str, tuple[str]]:
    """``PostgresCursor.insert_rows``'s statement and its one parameter (the rows as JSON); ``chosen``: the
    value of each column, an SQL expression over the row (default: the column's own), ``where``: a condition
    every row is inserted under (``one_trip.py``)."""
    data = orjson.dumps([dict(zip(columns, row, strict=True)) for row in rows]).decode()
    names = [*columns, *(computed or {})]
    values = [*(chosen or columns), *(computed or {}).values()]
    return (f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(values)} "
            f"FROM json_populate_recordset(NULL::{table}, ?::json) {f'WHERE {where} ' if where else ''}{tail}",
            (data,))


class PostgresCursor(Cursor):
    dialect = "postgres"

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        # PostgreSQL takes a SHARE lock on the table before it finds that the index exists, so a
        # process opening the store (the CLI, beside a serving node) would block, and could deadlock,
        # the writers of that table: an index that exists is not asked for again.
        index = _CREATE_INDEX.match(sql)
        if index is not None:
            found = super().execute("SELECT to_regclass(?) IS NOT NULL AS found", (index[1],)).fetchone()
            if found and found["found"]:
                return self
        return super().execute(sql, params)

    def uuid(self, value: UUID) -> UUID:
        return value

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], tail: str = "",
                    computed: Mapping[str, str] | None = None) -> None:
        # One statement for all rows, typed by the table's own row type: executemany sends (and the
        # server executes) one statement per row, ~40 µs of client CPU each in pipeline mode (docs/scaling.md).
        if rows:
            self.execute(*insert_rows_sql(table, columns, rows, tail, computed))


class PipelineCursor(PostgresCursor):
    """A cursor on a psycopg connection in pipeline mode: a new cursor per statement.

    In pipeline mode results queue up per cursor; a fetch after an earlier
    statement whose result was never fetched would read that result instead.
    """

    def __init__(self, connection: Any) -> None:
        super().__init__(connection.cursor())
        self.connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        self.raw = self.connection.cursor()
        return super().execute(sql, params)

    def execute_later(self, sql: str, params: Sequence[Any] = ()) -> Callable[[], dict[str, Any] | None]:
        self.execute(sql, params)
        return PostgresCursor(self.raw).fetchone  # the next statement takes a cursor of its own

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.raw = self.connection.cursor()
            super().executemany(sql, rows)


class PostgresRecorder(HookedRecorder, PostgresApplicationRecorder):
    """The library's PostgreSQL recorder plus the gid index and the commit hooks."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events") -> None:
        # Set before the library's recorder opens the pool's first connection.
        # The lock timeout is each connection's (sent when it connects), not a `SET LOCAL` before each insert's
        # table lock: one statement fewer in every write, each a round trip for the group commit's leader.
        timeout = {"options": f"-c lock_timeout={datastore.lock_timeout}s"} if datastore.lock_timeout else {}
        datastore.pool.kwargs = {**(datastore.pool.kwargs or {}), **timeout}
        super().__init__(datastore, events_table_name=events_table_name)
        self.lock_table_statements = [SQL("LOCK TABLE {0}.{1} IN EXCLUSIVE MODE").format(  # without SET LOCAL
            Identifier(datastore.schema), Identifier(self.events_table_name))]
        self.commit_hooks: list[CommitHook] = [write_index]
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS tx_index ("
                "gid TEXT PRIMARY KEY, originator_id UUID NOT NULL, "
                "originator_version BIGINT NOT NULL)"
            )
        )
        self.insert_columns_statement = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
            "SELECT i, v, t, s FROM unnest(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[]) "
            "WITH ORDINALITY AS u(i, v, t, s, n) ORDER BY n RETURNING notification_id"
        ).format(schema=Identifier(datastore.schema), table=Identifier(self.events_table_name),
                 id_type=Identifier(datastore.originator_id_type))
        # The same insert, its numbers kept in the transaction for the statements after it (``one_trip.py``).
        self.insert_ids_statement = SQL(
            "WITH ins AS ({insert}), a AS (SELECT array_agg(notification_id ORDER BY notification_id) AS ids "
            "FROM ins) SELECT set_config('fedsync.ids', a.ids::text, true) AS ids FROM a"
        ).format(insert=self.insert_columns_statement)

    def _insert(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        # The in-commit projection rehearsed first, before any transaction (``projections/rehearsal.py``): in
        # one round trip if its writes can be made in SQL alone (``one_trip.py``), else the library's insert
        # checks it with the insert and replays it under the lock (``_replayed``).
        rehearsed = self._rehearse(stored_events, kwargs)
        writes = None if rehearsed is None else one_trip.gated_writes(rehearsed, len(stored_events), insert_rows_sql)
        if rehearsed is not None and writes is not None:
            return self._insert_in_one_trip(stored_events, rehearsed, writes, kwargs)
        if rehearsed is not None:
            kwargs["rehearsed"].append(rehearsed)
        return super()._insert(stored_events, **kwargs)

    def _rehearse(self, stored_events: Sequence[StoredEvent], kwargs: dict[str, Any]) -> Any | None:
        if kwargs.get("rehearsed") is None or self.rehearser is None or self.in_commit is None or not stored_events:
            return None
        txs = transactions_of(stored_events, kwargs.get("extras") or CommitExtras())
        return None if txs is None else self.rehearser.rehearse(_Reads(self), txs)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _insert_in_one_trip(self, stored_events: Sequence[StoredEvent], rehearsed: Any,
                            writes: list[one_trip.Statement], kwargs: dict[str, Any]) -> list[int]:
        assert self.rehearser is not None
        with self.datastore.get_connection() as conn:
            cursor = PipelineCursor(conn)
            try:
                with conn.pipeline():
                    cursor.execute("BEGIN")
                    self._write_extras(PostgresCursor(conn.cursor()), kwargs)
                    self._lock_table(conn.cursor())
                    held = self.rehearser.check_later(cursor, rehearsed)
                    inserted = conn.cursor()
                    inserted.execute(self.insert_ids_statement, (
                        [e.originator_id for e in stored_events], [e.originator_version for e in stored_events],
                        [e.topic for e in stored_events], [e.state for e in stored_events]))
                    for sql, params in writes:
                        cursor.execute(sql, params)
                    cursor.execute("COMMIT")
            except BaseException:
                if conn.info.transaction_status != TransactionStatus.IDLE:
                    conn.rollback()
                raise
            row = inserted.fetchone()
            holds = rehearsed.holds(held())
        ids = one_trip.ids_of(row["ids"])
        committed: list[Callable[[], None]] | None = kwargs.get("committed")
        if committed is not None:
            committed[:] = [self.rehearser.replayed(rehearsed, ids, (kwargs.get("extras") or CommitExtras()).views,
                                                    held=holds)]
        return ids

    def _insert_events(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        # Runs in the same transaction, just before the events are inserted, so that a
        # duplicate gid fails at the pipeline's sync as the library's IntegrityError.
        self._write_extras(PostgresCursor(curs), kwargs)

    def _insert_stored_events(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        # The library sends the events as one array of a composite type, which psycopg dumps as text in
        # Python: ~85 µs of client CPU per 2 KB event, and the server parses it back (135 µs per event in
        # all, against 20 for this: one binary array per column). Same lock, and ids returned in the events'
        # order (the ORDER BY gives them their sequence numbers in that order). Without the library's NOTIFY
        # on its own channel: nothing here listens to it (the node's processes listen on ``fedsync_saved``,
        # ``duties.notify_saved``), and it was one more statement in every write.
        self._lock_table(curs)
        held: list[Any] | None = kwargs.get("rehearsed")
        if held and self.rehearser is not None:  # whether the rehearsal holds, answered with the insert
            held.append(self.rehearser.check_later(PipelineCursor(curs.connection), held[0]))
        curs.execute(self.insert_columns_statement, (
            [e.originator_id for e in stored_events], [e.originator_version for e in stored_events],
            [e.topic for e in stored_events], [e.state for e in stored_events]))

    def _fetch_ids_after_insert_events(self, curs: Any, stored_events: Sequence[StoredEvent],
                                       **kwargs: Any) -> Sequence[int] | None:
        # Still in the transaction (and its pipeline), the table lock held: every lower
        # sequence number belongs to a settled transaction. Sorted: the ORDER BY numbered the
        # events in their order, whatever order RETURNING lists the numbers in.
        ids = sorted(super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs) or ())
        cursor = PipelineCursor(curs.connection)
        if not (ids and self._replayed(cursor, ids, kwargs)):
            self._run_in_commit(cursor, ids, stored_events, kwargs)
        return ids

    def _replayed(self, cursor: PipelineCursor, ids: Sequence[int], kwargs: dict[str, Any]) -> bool:
        """Whether the rehearsed projection held, and its writes were sent (with the events' numbers)."""
        held: list[Any] | None = kwargs.get("rehearsed")
        if not held or len(held) != 2 or self.rehearser is None:
            return False
        if not held[0].holds(held[1]()):
            self.rehearser.forget_rows()
            return False
        committed: list[Callable[[], None]] | None = kwargs.get("committed")
        cursor.execute("SAVEPOINT rehearsed_projection")
        try:
            callback = self.rehearser.replay(cursor, held[0], ids, (kwargs.get("extras") or CommitExtras()).views)
        except Exception:
            log.exception("replaying the projection of events %d-%d failed; projecting them again", ids[0], ids[-1])
            cursor.execute("ROLLBACK TO SAVEPOINT rehearsed_projection")
            return False
        cursor.execute("RELEASE SAVEPOINT rehearsed_projection")
        if committed is not None:
            committed[:] = [callback]
        return True

    @contextmanager
    def reading(self) -> Iterator[Any]:
        """A cursor on an autocommit connection, for reads: at READ COMMITTED (PostgreSQL's default,
        which the library keeps) each statement takes its own snapshot inside a transaction too, so a
        read-only transaction only costs a BEGIN and a ROLLBACK, a round trip each."""
        with self.datastore.get_connection() as connection, connection.cursor() as c:
            yield c

    def existing(self, ids: Sequence[UUID]) -> set[UUID]:
        """Which of these aggregates have events stored (one query, no transaction: see ``reading``)."""
        with self.reading() as c:
            c.execute(f"SELECT DISTINCT originator_id FROM {self.events_table_name} "
                      "WHERE originator_id = ANY(%s)", (list(ids),))
            return {row["originator_id"] for row in c.fetchall()}

    def stored_after(self, position: int, limit: int) -> list[tuple[int, UUID]]:
        with self.reading() as c:
            c.execute(f"SELECT notification_id, originator_id FROM {self.events_table_name} "
                      "WHERE notification_id > %s ORDER BY notification_id LIMIT %s", (position, limit))
            return [(row["notification_id"], row["originator_id"]) for row in c.fetchall()]

    def locate_sql(self) -> str:
        return (
            "SELECT t.gid AS gid, e.notification_id AS seq, e.originator_id AS originator_id, "
            "e.originator_version AS originator_version, e.topic AS topic, e.state AS state "
            f"FROM tx_index t JOIN {self.events_table_name} e "
            "ON e.originator_id = t.originator_id AND e.originator_version = t.originator_version "
            "WHERE t.gid = ANY(%s)"
        )

    def locate(self, gids: Sequence[str]) -> list[dict[str, Any]]:
        """Stored events of the given transaction gids (absent gids are left out)."""
        with self.reading() as c:
            c.execute(self.locate_sql(), (list(gids),))
            return [dict(row) for row in c.fetchall()]


class _Reads:
    """A cursor for a rehearsal's reads: each statement on a connection of the pool, outside any transaction."""

    def __init__(self, recorder: PostgresRecorder) -> None:
        self.recorder = recorder
        self._rows: list[dict[str, Any]] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Reads:
        with self.recorder.reading() as c:
            self._rows = PostgresCursor(c).execute(sql, params).fetchall()
        return self

    def fetchall(self) -> list[dict[str, Any]]:
        return self._rows


class PostgresDatabase(Database):
    dialect = "postgres"
    sequence_column = "notification_id"
    in_process = False

    recorder: PostgresRecorder

    @contextmanager
    def transaction(self, *, commit: bool = True) -> Iterator[Cursor]:
        with self.recorder.datastore.transaction(commit=commit) as c:
            yield PostgresCursor(c)

    @contextmanager
    def read(self) -> Iterator[Cursor]:
        """Reads with no BEGIN and ROLLBACK around them (``PostgresRecorder.reading``): about four
        round trips fewer per edit."""
        with self.recorder.reading() as c:
            yield PostgresCursor(c)

    def write(self, sql: str, params: Sequence[Any] = ()) -> int:
        """On the autocommit connection of ``read``: a statement is its own transaction, so no BEGIN
        and COMMIT round trips around it."""
        with self.recorder.reading() as c:
            return PostgresCursor(c).execute(sql, params).rowcount
