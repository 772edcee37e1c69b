"""How a batch of events and its rows reach the store (both stores): sequence numbers handed back in the
events' order, the gid index written with them, a duplicate event or gid failing the whole batch as the
library's IntegrityError, and ``insert_rows`` writing what ``executemany`` would."""

from __future__ import annotations

import uuid

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from domain.commit import CommitExtras, IndexEntry


def events(count: int, *, version: int = 1) -> list[StoredEvent]:
    # a state with every byte value, and a size near the one a received transaction has
    return [StoredEvent(uuid.uuid4(), version, f"tests:Event{i}", bytes(range(256)) * 8 + str(i).encode())
            for i in range(count)]


def index_of(stored: list[StoredEvent]) -> CommitExtras:
    return CommitExtras([IndexEntry(f"gid-{e.originator_id}", e.originator_id, e.originator_version)
                         for e in stored])


@pytest.fixture
def recorder(node):
    node.app.recorder.in_commit = None  # these states are not transactions: nothing to project
    return node.app.recorder


def stored_rows(node) -> list[dict]:
    seq = node.db.sequence_column
    with node.db.read() as cur:
        return cur.execute(f"SELECT {seq} AS seq, originator_id, originator_version, topic, state "
                           f"FROM {node.db.events_table} ORDER BY {seq}").fetchall()


def test_a_batch_gets_increasing_sequence_numbers_in_its_order_with_its_index_rows(node, recorder):
    first, second = events(300), events(5)

    ids = [*recorder.insert_events(first, extras=index_of(first)),
           *recorder.insert_events(second, extras=index_of(second))]

    assert ids == sorted(set(ids))
    rows = stored_rows(node)
    assert [row["seq"] for row in rows] == ids
    for row, event in zip(rows, first + second, strict=True):
        assert uuid.UUID(str(row["originator_id"])) == event.originator_id
        assert (row["originator_version"], row["topic"], bytes(row["state"])) == \
            (event.originator_version, event.topic, event.state)
    located = recorder.locate([f"gid-{e.originator_id}" for e in second])
    assert sorted(row["seq"] for row in located) == ids[-5:]


def test_an_event_stored_already_fails_its_whole_batch_as_an_integrity_error(node, recorder):
    stored = events(3)
    recorder.insert_events(stored, extras=index_of(stored))
    again = [*events(2), stored[1]]

    with pytest.raises(IntegrityError):
        recorder.insert_events(again, extras=index_of(again[:2]))

    assert len(stored_rows(node)) == 3
    assert recorder.locate([f"gid-{e.originator_id}" for e in again[:2]]) == []


def test_a_gid_indexed_already_fails_its_whole_batch_as_an_integrity_error(node, recorder):
    stored = events(2)
    recorder.insert_events(stored, extras=index_of(stored))
    other = events(1)

    with pytest.raises(IntegrityError):
        recorder.insert_events(other, extras=CommitExtras([IndexEntry(f"gid-{stored[0].originator_id}",
                                                                      other[0].originator_id, 1)]))

    assert len(stored_rows(node)) == 2


def test_insert_rows_writes_what_one_insert_per_row_would(node):
    rows = [("a", 1, None, "plain"), ("b", 2**40, "x", "quote ' \" \\ and é ✓"), ("c", -3, "", "")]
    with node.db.transaction() as cur:
        cur.execute("CREATE TABLE scratch (k TEXT PRIMARY KEY, n BIGINT NOT NULL, maybe TEXT, t TEXT NOT NULL, "
                    "d INTEGER NOT NULL DEFAULT 7)")
        cur.insert_rows("scratch", ("k", "n", "maybe", "t"), rows)
        cur.insert_rows("scratch", ("k", "n", "maybe", "t"), [])
        cur.insert_rows("scratch", ("k", "n", "maybe", "t"), [("a", 5, "y", "new"), ("d", 4, None, "d")],
                        "ON CONFLICT (k) DO UPDATE SET n = excluded.n, maybe = excluded.maybe")
    with node.db.read() as cur:
        found = [tuple(row.values()) for row in cur.execute("SELECT * FROM scratch ORDER BY k").fetchall()]

    assert found == [("a", 5, "y", "plain", 7), *((*row, 7) for row in rows[1:]), ("d", 4, None, "d", 7)]


def test_insert_rows_fills_computed_columns_from_the_row_s_values(node):
    with node.db.transaction() as cur:
        cur.execute("CREATE TABLE scratch (k TEXT PRIMARY KEY, n BIGINT NOT NULL, twice BIGINT NOT NULL)")
        cur.insert_rows("scratch", ("k", "n"), [("a", 1), ("b", 2**40)], computed={"twice": "n * 2"})
        cur.insert_rows("scratch", ("k", "n"), [("a", 5)], "ON CONFLICT (k) DO UPDATE SET n = excluded.n",
                        computed={"twice": "n * 2"})
    with node.db.read() as cur:
        found = [tuple(row.values()) for row in cur.execute("SELECT * FROM scratch ORDER BY k").fetchall()]

    assert found == [("a", 5, 2), ("b", 2**40, 2**41)]


def test_a_write_waits_for_the_store_s_lock_a_bounded_time(node) -> None:
    """On PostgreSQL the lock timeout is each connection's (set when it connects), not a SET LOCAL per write;
    SQLite's connections wait for its one write lock as long as their busy timeout."""
    postgres = node.db.dialect == "postgres"
    query = "SHOW lock_timeout" if postgres else "PRAGMA busy_timeout"
    with node.db.read() as cur:
        read = list(cur.execute(query).fetchone().values())[0]
    with node.db.transaction() as cur:
        written = list(cur.execute(query).fetchone().values())[0]
    assert (read, written) == (("30s", "30s") if postgres else (read, read)) and read not in (0, "0")
