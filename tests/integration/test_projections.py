"""Projections: rebuild equals incremental, exactly once across crashes (both stores)."""

from __future__ import annotations

import os
import threading

import pytest

from api.library import ItemQuery
from api.search import ItemSearch
from domain.visibility import Editor
from infrastructure.visibility import EditorTeams
from projections.projector import VIEWS_VERSION, Projector, decode
from projections.rehearsal import Pending
from tests.factory import AUTHOR, SigningPeer, history
from tests.forkserver import fedsync

VIEW_KEYS = {"documents": "item_gid", "tags": "tag_gid", "shares": "share_gid",
             "conflicts": "item_gid", "transactions": "seq"}


def dump_views(node) -> dict[str, list[dict]]:
    with node.db.read() as cur:
        return {table: cur.execute(f"SELECT * FROM {table} ORDER BY {key}").fetchall()
                for table, key in VIEW_KEYS.items()}


def searched(node, text: str) -> list[tuple[str, str, str]]:
    """Every item matching ``text`` as an admin finds it: gid, marked title, marked body fragment."""
    admin = Editor("root", f"root@{node.name}", "admin", None)
    EditorTeams(node.db).create_tables()  # (the API's table, which the visibility rule reads)
    found, _ = ItemSearch(node.db, node.projector.search).search(admin, ItemQuery(text=text, limit=5000))
    return [(hit["item_gid"], hit["highlight"]["title"], hit["highlight"]["body"]) for hit in found]


def mixed_store(node, peer: SigningPeer, items: int, edits: int) -> list[dict]:
    """Received histories with conflicts, tags, shares, plus local edits, forks and merges."""
    txs = history(peer, items, edits)
    tag = peer.create_tag("shared")
    txs.append(tag)
    txs.append(peer.grant(txs[0], "urn:domain:c.example.org"))
    created = peer.create_item(markdown="base\n")
    txs += [created, peer.edit(created, markdown="left\n"), peer.edit(created, markdown="right\n")]
    for i in range(0, len(txs), 500):
        node.app.receive(txs[i:i + 500])
    local = node.app.create_item(author=AUTHOR, title="local", markdown="one\n", tags=[tag["entity_gid"]])
    edit = node.app.edit_item(local.entity_gid, parent=local.gid, author=AUTHOR, markdown="two\n")
    node.app.fork_item([local.entity_gid, txs[0]["entity_gid"]], author=AUTHOR)
    node.app.delete_item(local.entity_gid, parent=edit.gid, author=AUTHOR)
    return txs


def test_rebuild_command_on_ten_thousand_transactions_gives_the_incremental_views(node, peer):
    txs = mixed_store(node, peer, items=1000, edits=9)
    node.app.receive([peer.edit(txs[9], markdown="edit 8, last of all\n")])  # item 0, indexed again at the end
    incremental = dump_views(node)
    found = searched(node, "edit 8")
    assert len(incremental["transactions"]) >= 10_000 and len(found) == 1000
    assert len(incremental["conflicts"]) == 1
    env = dict(os.environ, FEDSYNC_DATA_DIR=str(node.settings.data_dir))
    if node.settings.database_url:
        env["FEDSYNC_DATABASE_URL"] = node.settings.database_url

    result = fedsync("projections", "rebuild", env=env, timeout=600)

    assert result.returncode == 0, result.stderr
    assert "events/s" in result.stdout
    assert dump_views(node) == incremental
    assert searched(node, "edit 8") == found  # the search index too, its rows and text in step


def test_a_crash_after_storing_before_projecting_is_repaired_on_restart(make_node, node, peer):
    def crash() -> None:
        raise RuntimeError("killed between storing and projecting")

    node.app.recorder.in_commit = None  # the process dies before any projection
    node.app.after_save = crash
    created = peer.create_item()
    with pytest.raises(RuntimeError):
        node.app.receive([created])
    with pytest.raises(RuntimeError):
        node.app.receive([peer.edit(created, markdown="after crash\n")])
    stored = node.app.recorder.max_notification_id()

    restarted = type(node)(node.settings, node.config, node.keyring)  # a new process's node
    views = dump_views(restarted)

    assert stored == 2
    assert len(views["transactions"]) == 2
    assert views["documents"][0]["markdown"] == "after crash\n"
    restarted.projector.rebuild()
    assert dump_views(restarted) == views
    restarted.close()


def test_a_crash_inside_a_projection_batch_rolls_back_and_never_double_counts(node, peer):
    created = peer.create_item()
    node.app.recorder.in_commit = None
    node.app.after_save = lambda: None
    node.app.receive([created, peer.edit(created, markdown="two\n")])
    real_apply = node.projector.apply

    def apply_then_die(cur, events):
        real_apply(cur, events)
        raise RuntimeError("killed after writing view rows, before commit")

    node.projector.apply = apply_then_die
    with pytest.raises(RuntimeError):
        node.projector.catch_up()
    assert node.projector.position() == 0
    node.projector.apply = real_apply

    node.projector.catch_up()
    node.projector.catch_up()

    views = dump_views(node)
    assert len(views["transactions"]) == 2
    assert views["documents"][0]["markdown"] == "two\n"


def test_a_save_is_projected_in_its_own_commit(node, peer):
    node.app.after_save = lambda: None  # no catch-up after the save: the commit itself projected
    created = peer.create_item()
    node.app.receive([created, peer.edit(created, markdown="two\n")])
    node.app.receive([peer.edit(created, markdown="three\n")])

    assert node.projector.position() == node.app.recorder.max_notification_id() == 3
    views = dump_views(node)
    assert [row["seq"] for row in views["transactions"]] == [1, 2, 3]
    assert views["documents"][0]["markdown"] == "three\n"


def test_every_view_projects_in_the_commit_of_mixed_batches(node, peer, caplog):
    # No catch-up after saves: what the views hold was written in the saves' own commits.
    node.app.after_save = lambda: None
    mixed_store(node, peer, items=60, edits=9)
    more = history(peer, 40, 5)
    for i in range(0, len(more), 10):  # many saves: psycopg prepares statements after 5 uses
        node.app.receive(more[i:i + 10])
    target = peer.create_item(markdown="target\n")
    node.app.receive([target, peer.create_item(markdown=f"see {{item:{target['entity_gid']}}}\n")])
    incremental = dump_views(node)

    assert "in their commit failed" not in caplog.text
    assert node.projector.position() == node.app.recorder.max_notification_id()
    with node.db.read() as cur:
        assert cur.execute("SELECT COUNT(*) AS n FROM item_references").fetchone()["n"] == 1
        assert cur.execute("SELECT COUNT(*) AS n FROM forks").fetchone()["n"] >= 1
    node.projector.rebuild()
    assert dump_views(node) == incremental


def test_a_view_failing_in_the_commit_still_stores_and_projects_after(node, peer, caplog):
    created = peer.create_item()
    node.app.receive([created])
    real_apply, real_catch_up = node.projector.apply, node.projector.catch_up
    calls = []
    in_the_save = [True]

    def fail_in_the_save(cur, events):
        calls.append([seq for seq, _ in events])
        real_apply(cur, events)  # rows written, then rolled back to the savepoint (or only recorded)
        if in_the_save[0]:
            raise RuntimeError("a view broke")

    def catch_up(*args, **kwargs):
        in_the_save[0] = False
        return real_catch_up(*args, **kwargs)

    node.projector.apply, node.projector.catch_up = fail_in_the_save, catch_up
    outcome = node.app.receive([peer.edit(created, markdown="two\n")])

    assert [o.status for o in outcome] == ["stored"]
    # rehearsed before the write lock on PostgreSQL (failed), in the commit (failed), by the catch-up after it
    rehearsed = [Pending(0)] if node.db.dialect == "postgres" else []
    assert calls == [*([rehearsed] if rehearsed else []), [2], [2]]
    assert "projecting events 2-2 in their commit failed" in caplog.text
    views = dump_views(node)
    assert [row["seq"] for row in views["transactions"]] == [1, 2]
    assert views["documents"][0]["markdown"] == "two\n"
    assert node.projector.position() == 2


def test_a_lagging_projection_is_caught_up_not_skipped(node, peer):
    node.app.recorder.in_commit = None
    node.app.after_save = lambda: None
    created = peer.create_item()
    node.app.receive([created])  # stored, not projected (as after a crash)
    node.app.recorder.in_commit = node.projector.project_in_commit
    node.app.after_save = node.projector.settle
    node.app.receive([peer.edit(created, markdown="two\n")])

    views = dump_views(node)
    assert [row["seq"] for row in views["transactions"]] == [1, 2]
    assert views["documents"][0]["markdown"] == "two\n"


def test_two_projectors_on_one_store_apply_each_batch_once(node, peer):
    node.app.recorder.in_commit = None
    node.app.after_save = lambda: None
    txs = history(peer, 20, 4)
    node.app.receive(txs)
    other = Projector(node.db, node.app.recorder, batch=7)
    node.projector.batch = 5

    threads = [threading.Thread(target=p.catch_up) for p in (node.projector, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    views = dump_views(node)
    assert [row["seq"] for row in views["transactions"]] == [seq for seq, _ in node.app.outbox_after(None, 1000)]
    assert len(views["transactions"]) == 100


def test_views_of_another_layout_are_dropped_and_rebuilt_when_the_store_opens(node, peer):
    mixed_store(node, peer, items=30, edits=3)
    current = dump_views(node)
    with node.db.transaction() as cur:  # what a node of the layout before view_schema left behind
        cur.execute("DROP TABLE view_schema")
        cur.execute("ALTER TABLE documents DROP COLUMN head_scope")
        cur.execute("UPDATE documents SET markdown = 'stale'")

    reopened = type(node)(node.settings, node.config, node.keyring)

    assert dump_views(reopened) == current
    with reopened.db.read() as cur:
        assert cur.execute("SELECT version FROM view_schema").fetchone()["version"] == VIEWS_VERSION
    reopened.close()


def test_one_batch_re_indexes_the_newest_item_and_indexes_a_new_one(node, peer):
    # The newest item's search row is replaced while a new item is indexed in the same commit: the
    # new one must not be numbered into the id the newest one is about to take back.
    # (rows are written in gid order: the new item must come first, as it would half of the time; the
    # newest one's gid is taken from the upper half so that a smaller one is found at once)
    first = peer.create_item(markdown="alpha\n")
    second = next(tx for tx in (peer.create_item(markdown="beta\n") for _ in range(200)) if tx["entity_gid"] >= "8")
    node.app.receive([first])
    node.app.receive([second])  # the newest search row
    new = next(tx for tx in (peer.create_item(markdown="gamma delta\n") for _ in range(200))
               if tx["entity_gid"] < second["entity_gid"])
    node.app.receive([peer.edit(second, markdown="beta gamma\n"), new])

    assert node.projector.position() == node.app.recorder.max_notification_id() == 4
    assert len(searched(node, "gamma")) == 2
    assert [gid for gid, _, _ in searched(node, "alpha")] == [first["entity_gid"]]


def test_the_rows_a_view_says_it_wrote_are_the_rows_it_stored(node, peer):
    # The search index takes the documents rows from the view instead of reading them back.
    mixed_store(node, peer, items=5, edits=3)
    with node.db.transaction(commit=False) as cur:
        seq = node.db.sequence_column
        events = [(row["seq"], decode(bytes(row["state"]))) for row in cur.execute(
            f"SELECT {seq} AS seq, state FROM {node.db.events_table} ORDER BY {seq}").fetchall()]
        for view in node.projector.views:
            cur.execute(f"DELETE FROM {view.table}")
            processed = view.process(cur, events)
            in_table = {row[view.key]: row for row in cur.execute(f"SELECT * FROM {view.table}").fetchall()}
            assert processed.rows == in_table, view.table
            assert set(processed.heads) == set(in_table)
            assert in_table or view.table == "attachments"  # (the store has no attachment)
