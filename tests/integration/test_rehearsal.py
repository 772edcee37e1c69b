"""The in-commit projection rehearsed before the write lock (projections/rehearsal.py).

PostgreSQL only: the rehearsal exists where saves queue for the events
table's lock, which SQLite does not have (its writers are one process's,
serialised). Each test runs real saves on a real database and compares the
views with a rebuild from the events.
"""

from __future__ import annotations

from uuid import UUID

import orjson
import pytest
from eventsourcing.persistence import IntegrityError

from domain.commit import CommitExtras, IndexEntry
from infrastructure.node import Node, init_node
from infrastructure.settings import Settings
from projections import rehearsal
from tests.conftest import STORES, database_urls
from tests.factory import AUTHOR
from tests.integration.test_projections import dump_views, searched

pytestmark = pytest.mark.skipif("postgres" not in STORES, reason="the rehearsal is PostgreSQL's")


@pytest.fixture
def postgres():
    yield from database_urls("postgres")


@pytest.fixture
def settings(postgres, tmp_path) -> Settings:
    settings = Settings(data_dir=tmp_path, database_url=postgres())
    init_node(settings, "https://a.example.org")
    return settings


@pytest.fixture
def node(settings):
    node = Node.open(settings)
    yield node
    node.close()


def count_calls(node: Node) -> dict[str, int]:
    """How the saves were projected: in one round trip with the rehearsal's writes ("one trip"), of which the
    rehearsal did not hold ("not held": caught up after the commit), the rehearsal replayed under the lock
    after the insert ("replayed"), or projected under the lock ("under the lock")."""
    calls = {"one trip": 0, "not held": 0, "replayed": 0, "under the lock": 0}
    recorder, projector = node.app.recorder, node.projector
    one_trip, replayed, replay, in_commit = (recorder._insert_in_one_trip, projector.replayed, projector.replay,
                                             recorder.in_commit)

    def counted(name, real):
        def call(*args, **kwargs):
            if name != "not held" or kwargs.get("held") is False:
                calls[name] += 1
            return real(*args, **kwargs)
        return call

    recorder._insert_in_one_trip = counted("one trip", one_trip)
    projector.replayed = counted("not held", replayed)
    projector.replay = counted("replayed", replay)
    recorder.in_commit = counted("under the lock", in_commit)
    return calls


def made(**counts: int) -> dict[str, int]:
    return {"one trip": 0, "not held": 0, "replayed": 0, "under the lock": 0} | {
        name.replace("_", " "): n for name, n in counts.items()}


def assert_views_equal_a_rebuild(node: Node) -> None:
    incremental = dump_views(node)
    node.projector.rebuild()
    assert dump_views(node) == incremental


def test_edits_are_projected_by_their_rehearsal_and_equal_a_rebuild(node):
    tag = node.app.create_tag(author=AUTHOR, name="plans")
    calls = count_calls(node)
    item = node.app.create_item(author=AUTHOR, title="a", markdown="one\n", tags=[tag.entity_gid])
    other = node.app.create_item(author=AUTHOR, title="b", markdown=f"see {{item:{item.entity_gid}}}\n")
    edit = node.app.edit_item(item.entity_gid, parent=item.gid, author=AUTHOR, markdown="two\n")

    assert calls == made(one_trip=3)
    assert [hit[0] for hit in searched(node, "two")] == [item.entity_gid]
    with node.db.read() as cur:
        row = cur.execute("SELECT seq, markdown FROM documents WHERE item_gid = ?", (item.entity_gid,)).fetchone()
        referring = cur.execute("SELECT item_gid FROM item_references WHERE target_gid = ?",
                                (item.entity_gid,)).fetchall()
    assert row["markdown"] == "two\n" and row["seq"] == node.projector.position()
    assert edit.view is not None and edit.view["seq"] == row["seq"]  # the answer's row, its number resolved
    assert referring == [{"item_gid": other.entity_gid}]
    assert_views_equal_a_rebuild(node)


def test_a_conflict_is_projected_under_the_lock(node, peer):
    # a conflict's start is read from the item's history, which the rehearsal cannot check: not rehearsed
    created = peer.create_item(markdown="one\n")
    node.app.receive([created, peer.edit(created, markdown="two\n")])
    calls = count_calls(node)
    node.app.receive([peer.edit(created, markdown="three\n")])

    assert calls == made(under_the_lock=1)
    with node.db.read() as cur:
        assert len(cur.execute("SELECT * FROM conflicts").fetchall()) == 1
    assert_views_equal_a_rebuild(node)


def test_a_row_changed_by_another_process_after_the_rehearsal_is_read_again_under_the_lock(node, settings):
    # The edit's search row names its tags: the rehearsal read the tag's name before another process renamed
    # it; replayed, the row would keep the old name.
    other = Node.open(settings)
    try:
        tag = node.app.create_tag(author=AUTHOR, name="oldname")
        item = node.app.create_item(author=AUTHOR, title="a", markdown="one\n", tags=[tag.entity_gid])
        rehearse = node.projector.rehearse

        def renamed_meanwhile(cur, txs):
            rehearsed = rehearse(cur, txs)
            if txs[0]["entity_gid"] == item.entity_gid:
                other.app.rename_tag(tag.entity_gid, parent=tag.gid, author=AUTHOR, name="newname")
            return rehearsed

        node.projector.rehearse = renamed_meanwhile
        calls = count_calls(node)
        node.app.edit_item(item.entity_gid, parent=item.gid, author=AUTHOR, markdown="two\n")
    finally:
        other.close()

    assert calls == made(one_trip=1, not_held=1)
    assert [hit[0] for hit in searched(node, "newname")] == [item.entity_gid]
    assert searched(node, "oldname") == []
    assert_views_equal_a_rebuild(node)


def test_a_rehearsal_takes_the_rows_its_process_wrote_last_and_they_are_the_stored_rows(node, monkeypatch):
    item = node.app.create_item(author=AUTHOR, title="a", markdown="one\n")
    edit = node.app.edit_item(item.entity_gid, parent=item.gid, author=AUTHOR, markdown="two\n")
    with node.db.read() as cur:
        stored = cur.execute("SELECT * FROM documents WHERE item_gid = ?", (item.entity_gid,)).fetchone()
    assert node.projector._rows.get("documents", {item.entity_gid}) == {item.entity_gid: stored}

    reads = []
    real = rehearsal.rows_by_key
    monkeypatch.setattr(rehearsal, "rows_by_key", lambda cur, table, *a: reads.append(table) or real(cur, table, *a))
    calls = count_calls(node)
    node.app.edit_item(item.entity_gid, parent=edit.gid, author=AUTHOR, markdown="three\n")

    assert reads == [] and calls == made(one_trip=1)
    assert_views_equal_a_rebuild(node)


def test_a_kept_row_another_process_changed_since_is_read_again_under_the_lock(node, settings):
    # The item's search row names its tag, whose row this process keeps from its last rehearsal: another process
    # renames the tag; taken as kept, the row would give the item's search row the old name.
    tag = node.app.create_tag(author=AUTHOR, name="oldname")
    item = node.app.create_item(author=AUTHOR, title="a", markdown="one\n", tags=[tag.entity_gid])
    edit = node.app.edit_item(item.entity_gid, parent=item.gid, author=AUTHOR, markdown="two\n")
    assert tag.entity_gid in node.projector._rows.get("tags", {tag.entity_gid})
    other = Node.open(settings)
    try:
        other.app.rename_tag(tag.entity_gid, parent=tag.gid, author=AUTHOR, name="newname")
    finally:
        other.close()
    calls = count_calls(node)
    node.app.edit_item(item.entity_gid, parent=edit.gid, author=AUTHOR, markdown="three\n")

    assert calls == made(one_trip=1, not_held=1)
    assert [hit[0] for hit in searched(node, "newname")] == [item.entity_gid]
    assert searched(node, "oldname") == []
    assert_views_equal_a_rebuild(node)


def test_a_write_sql_cannot_make_conditional_is_replayed_under_the_lock(node):
    # a fork's lineage rows go one statement per row (executemany): replayed after the insert, under the lock
    item = node.app.create_item(author=AUTHOR, title="a", markdown="one\n")
    calls = count_calls(node)
    fork = node.app.fork_item([item.entity_gid], author=AUTHOR)

    assert calls == made(replayed=1)
    with node.db.read() as cur:
        assert cur.execute("SELECT item_gid, source_gid FROM forks").fetchall() == [
            {"item_gid": fork.entity_gid, "source_gid": item.entity_gid}]
    assert_views_equal_a_rebuild(node)


def test_a_save_refused_by_the_store_in_one_trip_changes_nothing_and_the_next_save_goes_through(node):
    item = node.app.create_item(author=AUTHOR, title="a", markdown="one\n")
    stored = node.app.recorder.select_events(UUID(item.entity_gid))[-1]
    tx = orjson.loads(stored.state)["tx"]
    before = dump_views(node)
    calls = count_calls(node)

    with pytest.raises(IntegrityError):  # that version of that item is stored already
        node.app.recorder.insert_events([stored], extras=CommitExtras(
            [IndexEntry(tx["gid"], stored.originator_id, stored.originator_version, tx)]))

    assert calls == made(one_trip=1) and dump_views(node) == before
    node.app.edit_item(item.entity_gid, parent=item.gid, author=AUTHOR, markdown="two\n")
    assert calls == made(one_trip=2)
    assert_views_equal_a_rebuild(node)


def test_a_long_document_is_not_kept_but_read_when_its_next_save_is_rehearsed(node, monkeypatch):
    long = "word " * 8000 + "\n"  # 40 KB: over what a kept row may hold
    item = node.app.create_item(author=AUTHOR, title="a", markdown=long)
    assert node.projector._rows.get("documents", {item.entity_gid}) == {}

    reads = []
    real = rehearsal.rows_by_key
    monkeypatch.setattr(rehearsal, "rows_by_key", lambda cur, table, *a: reads.append(table) or real(cur, table, *a))
    calls = count_calls(node)
    node.app.edit_item(item.entity_gid, parent=item.gid, author=AUTHOR, markdown=long + "more\n")

    assert reads == ["documents"] and calls == made(one_trip=1)
    assert node.projector._rows.get("documents", {item.entity_gid}) == {}
    assert_views_equal_a_rebuild(node)


def test_the_gated_writes_read_the_pending_numbers_once_per_statement_not_per_row(postgres):
    """``fedsync.ids`` holds every number of the insert (a page of 500 received transactions: 500 of them): read
    and parsed for each row, the writes of a page cost O(rows^2) (12.8 ms instead of 0.2 ms per statement);
    read in a scalar subquery, PostgreSQL runs it once (an InitPlan) and the rows only index its result."""
    import psycopg

    from infrastructure.persistence.one_trip import HOLDS, IDS

    with psycopg.connect(postgres(), autocommit=True) as conn:
        conn.execute("BEGIN")
        conn.execute("SELECT set_config('fedsync.ids', '{7,8,9}', true), set_config('fedsync.holds', 'true', true)")
        sql = f"SELECT {IDS}[i] AS seq FROM generate_series(1, 3) AS i WHERE {HOLDS}"
        assert [row[0] for row in conn.execute(sql)] == [7, 8, 9]
        plan = [row[0] for row in conn.execute("EXPLAIN VERBOSE " + sql)]
        conn.execute("ROLLBACK")
    assert sum("InitPlan" in line for line in plan) == 2, "\n".join(plan)
    per_row = plan[:next(i for i, line in enumerate(plan) if "InitPlan" in line)]  # the scan's own lines
    assert not any("current_setting" in line for line in per_row), "\n".join(plan)
