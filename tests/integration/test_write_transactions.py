"""Write transactions of the product's own tables under a concurrent writer (both stores)."""

from __future__ import annotations

import sqlite3
import threading
import time

import psycopg

from infrastructure.peers import JTI_PRUNE_EVERY


def other_writer(node, done: threading.Event, errors: list[BaseException]) -> None:
    """Another process's connection: insert a row and commit (waits for locks up to 10 s)."""
    try:
        if node.settings.database_url:
            with psycopg.connect(node.settings.database_url) as conn:
                conn.execute("INSERT INTO seen_jti (jti, expires) VALUES ('other', 0)")
        else:
            conn = sqlite3.connect(node.settings.sqlite_path, timeout=10)
            try:
                conn.execute("INSERT INTO seen_jti (jti, expires) VALUES ('other', 0)")
                conn.commit()
            finally:
                conn.close()
    except BaseException as e:  # reported by the test
        errors.append(e)
    finally:
        done.set()


def test_a_write_transaction_that_reads_first_survives_another_writer_committing(node):
    done, errors = threading.Event(), []
    thread = threading.Thread(target=other_writer, args=(node, done, errors))
    with node.db.transaction() as cur:
        cur.execute("SELECT COUNT(*) AS n FROM seen_jti").fetchone()  # a read first
        thread.start()
        done.wait(0.5)  # a writer that may commit now (SQLite: it waits for our write lock instead)
        cur.execute("INSERT INTO seen_jti (jti, expires) VALUES ('ours', 0)")
    thread.join(timeout=15)

    assert errors == []
    with node.db.read() as cur:
        rows = cur.execute("SELECT jti FROM seen_jti ORDER BY jti").fetchall()
    assert [r["jti"] for r in rows] == ["other", "ours"]


def test_a_node_token_id_is_taken_once_and_expired_ids_are_dropped_now_and_then(node):
    peers = node.peers
    assert peers.remember_jti("n1 a", time.time() + 60)
    assert not peers.remember_jti("n1 a", time.time() + 60)  # a replay
    with node.db.transaction() as cur:
        cur.execute("INSERT INTO seen_jti (jti, expires) VALUES ('n1 old', ?)", (time.time() - 500,))
    assert peers.remember_jti("n1 b", time.time() + 60)  # pruned a moment ago: the old id stays for now
    peers._jti_pruned -= JTI_PRUNE_EVERY
    assert peers.remember_jti("n1 c", time.time() + 60)

    with node.db.read() as cur:
        kept = [row["jti"] for row in cur.execute("SELECT jti FROM seen_jti ORDER BY jti").fetchall()]
    assert kept == ["n1 a", "n1 b", "n1 c"]
    assert node.db.write("UPDATE seen_jti SET expires = 0 WHERE jti LIKE ?", ("n1 %",)) == 3
