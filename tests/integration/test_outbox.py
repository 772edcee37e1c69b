"""The outbox sequence: commit order, paging after a gid, gid lookups (both stores)."""

from __future__ import annotations

import threading
import uuid

import pytest

from domain.errors import TransactionNotFound
from tests.factory import AUTHOR


def page_all(node, after=None, limit=37):
    seen = []
    for _ in range(10_000):  # bounded
        page = node.app.outbox_after(after, limit)
        if not page:
            return seen
        seen.extend(page)
        after = page[-1][1]["gid"]
    raise AssertionError("paging did not end")


def test_concurrent_local_and_received_writes_page_in_commit_order_without_misses(node, peer):
    received = [peer.create_item(f"r{i}") for i in range(500)]
    stop = threading.Event()
    reader_seen: list[tuple[int, dict]] = []
    errors: list[BaseException] = []

    def local_writer(n: int) -> None:
        try:
            for i in range(n):
                r = node.app.create_item(author=AUTHOR, title=f"l{i}", markdown="x")
                if i % 2:
                    node.app.edit_item(r.entity_gid, parent=r.gid, author=AUTHOR, markdown="y")
        except BaseException as e:  # surfaced below
            errors.append(e)

    def receiver(chunk: list[dict]) -> None:
        try:
            for i in range(0, len(chunk), 10):
                node.app.receive(chunk[i:i + 10])
        except BaseException as e:
            errors.append(e)

    def reader() -> None:
        after = None
        for _ in range(200_000):  # bounded; a reader that follows the writers live
            done = stop.is_set()  # before the read: an empty page read after the writers ended is the end
            page = node.app.outbox_after(after, 50)
            reader_seen.extend(page)
            if page:
                after = page[-1][1]["gid"]
            elif done:
                return

    threads = [threading.Thread(target=local_writer, args=(167,)) for _ in range(2)]
    threads += [threading.Thread(target=receiver, args=(received[i::2],)) for i in range(2)]
    follower = threading.Thread(target=reader)
    follower.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    follower.join()

    assert not errors
    everything = page_all(node)
    assert len(everything) >= 1000
    sequences = [seq for seq, _ in everything]
    assert sequences == sorted(set(sequences))
    assert [tx["gid"] for _, tx in reader_seen] == [tx["gid"] for _, tx in everything]
    assert {tx["gid"] for tx in received} <= {tx["gid"] for _, tx in everything}


def test_paging_after_a_gid_returns_the_rest_in_order(node):
    receipts = [node.app.create_item(author=AUTHOR, title=str(i), markdown="") for i in range(25)]

    page = node.app.outbox_after(receipts[9].gid, 5)

    assert [tx["gid"] for _, tx in page] == [r.gid for r in receipts[10:15]]
    assert node.app.sequence_of(receipts[9].gid) < page[0][0]


def test_an_unknown_after_gid_is_a_clear_error(node):
    node.app.create_item(author=AUTHOR, title="t", markdown="")
    unknown = str(uuid.uuid4())

    with pytest.raises(TransactionNotFound) as refused:
        node.app.outbox_after(unknown, 10)

    assert unknown in refused.value.detail


def test_gid_lookups_use_the_index_not_a_scan(node):
    node.app.create_item(author=AUTHOR, title="t", markdown="")
    with node.db.read() as cur:
        if node.db.dialect == "sqlite":
            plan = cur.execute("EXPLAIN QUERY PLAN " + node.app.recorder.locate_sql(1), ("x",)).fetchall()
            text = " ".join(str(row["detail"]) for row in plan)
            assert "SCAN" not in text.replace("SCAN CONSTANT", "")
        else:
            sql = node.app.recorder.locate_sql().replace("%s", "ARRAY['x']")
            cur.execute("SET enable_seqscan = off")  # tiny tables: ask whether an index CAN serve it
            plan = cur.execute("EXPLAIN " + sql).fetchall()
            text = " ".join(str(v) for row in plan for v in row.values())
            assert "Seq Scan on tx_index" not in text
