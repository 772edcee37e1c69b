"""The SQLite store's connection pool gives back a writer's turn when the writer got no connection.

eventsourcing 9.5's pool takes the writer's lock before it waits for a free connection and kept it when
that wait timed out: from then on every write timed out "waiting for return of writer", and a node could
store nothing more until it restarted. SQLite only: PostgreSQL's store uses psycopg's pool, which has no
writer's lock.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from eventsourcing.persistence import ConnectionUnavailableError
from eventsourcing.sqlite import SQLiteDatastore

from infrastructure.persistence.sqlite import SQLiteRecorder


def one_connection_store(path: Path) -> SQLiteDatastore:
    datastore = SQLiteDatastore(str(path), pool_size=1, max_overflow=0, pool_timeout=0.3)
    SQLiteRecorder(datastore, "fedsync_events").create_table()
    return datastore


def test_a_writer_that_timed_out_waiting_for_a_connection_leaves_the_next_writer_its_turn(tmp_path):
    datastore = one_connection_store(tmp_path / "store.sqlite")
    reader = datastore.pool.get_connection(is_writer=False)
    with pytest.raises(ConnectionUnavailableError, match="return of connection"):
        datastore.pool.get_connection(is_writer=True, timeout=0.2)  # the one connection is the reader's
    datastore.pool.put_connection(reader)

    with datastore.transaction(commit=True) as cursor:  # was: "Timed out waiting for return of writer"
        cursor.execute("CREATE TABLE written (x INTEGER)")
        cursor.execute("INSERT INTO written (x) VALUES (1)")
    with datastore.transaction(commit=False) as cursor:
        cursor.execute("SELECT x FROM written")
        assert [row[0] for row in cursor.fetchall()] == [1]


def test_a_reader_that_timed_out_is_not_counted_as_reading(tmp_path):
    datastore = one_connection_store(tmp_path / "store.sqlite")
    writer = datastore.pool.get_connection(is_writer=True)
    readers = datastore.pool._num_readers
    with pytest.raises(ConnectionUnavailableError):
        datastore.pool.get_connection(is_writer=False, timeout=0.2)
    datastore.pool.put_connection(writer)
    assert datastore.pool._num_readers == readers
