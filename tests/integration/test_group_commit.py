"""Group commit: local commands of concurrent threads share one transaction (both stores)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from domain.errors import StaleHead
from projections import documents
from tests.factory import AUTHOR


class SlowFirstCommit:
    """Wraps the recorder's insert: records each commit's size; the first commit waits until
    ``waiters`` more commands are queued, so they all land in the next group."""

    def __init__(self, node, waiters: int) -> None:
        self.node = node
        self.real = node.app.recorder.insert_events
        self.waiters = waiters
        self.sizes: list[int] = []
        node.app.recorder.insert_events = self

    def __call__(self, stored_events, **kwargs):
        if not self.sizes:
            deadline = time.monotonic() + 10
            while self.node.app.group_commit.queued() < self.waiters and time.monotonic() < deadline:  # bounded
                time.sleep(0.001)
        self.sizes.append(len(stored_events))
        return self.real(stored_events, **kwargs)


def items(node, count: int) -> list[tuple[str, str]]:
    made = [node.app.create_item(author=AUTHOR, title=f"t{i}", markdown="one\n") for i in range(count)]
    return [(r.entity_gid, r.gid) for r in made]


def markdown_of(node, gid: str) -> str:
    with node.db.read() as cur:
        return documents.get(cur, gid)["markdown"]


def test_concurrent_edits_share_commits_and_each_gets_its_own_receipt(node):
    targets = items(node, 8)
    before = node.app.recorder.max_notification_id()
    hook = SlowFirstCommit(node, waiters=7)

    def edit(target: tuple[str, str]):
        gid, head = target
        return node.app.edit_item(gid, parent=head, author=AUTHOR, markdown=f"edited {gid}\n")

    with ThreadPoolExecutor(8) as pool:
        receipts = list(pool.map(edit, targets))

    assert hook.sizes[0] == 1 and hook.sizes[1] == 7  # the first alone, the others in one commit
    assert node.app.recorder.max_notification_id() == before + 8
    assert len({r.gid for r in receipts}) == 8
    for (gid, _), receipt in zip(targets, receipts, strict=True):
        assert receipt.entity_gid == gid
        assert node.app.entity(gid).heads == [receipt.gid]
        assert markdown_of(node, gid) == f"edited {gid}\n"
    assert node.projector.position() == node.app.recorder.max_notification_id()


def test_a_refused_command_fails_alone_and_same_head_edits_behave_as_in_sequence(node):
    targets = items(node, 4)
    hook = SlowFirstCommit(node, waiters=5)
    gid, head = targets[0]
    jobs = [(g, h, f"edited {g}\n") for g, h in targets] + [(gid, head, "second edit of one head\n"),
                                                            (targets[1][0], "not-a-head", "stale\n")]

    def edit(job):
        gid, head, markdown = job
        try:
            return node.app.edit_item(gid, parent=head, author=AUTHOR, markdown=markdown)
        except StaleHead as e:
            return e

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(edit, jobs))

    assert sum(hook.sizes) == 4
    refused = [r for r in results if isinstance(r, StaleHead)]
    assert len(refused) == 2  # the unknown head, and one of the two edits of targets[0]'s head
    assert node.app.entity(gid).heads != [head] and len(node.app.entity(gid).heads) == 1


def test_a_failed_group_save_is_retried_command_by_command(node, monkeypatch):
    targets = items(node, 6)
    hook = SlowFirstCommit(node, waiters=5)
    recorder = node.app.recorder
    real = recorder.insert_events
    failed = []

    def insert_events(stored_events, **kwargs):
        if len(stored_events) > 1 and not failed:
            failed.append(len(stored_events))
            raise RuntimeError("the database went away")
        return real(stored_events, **kwargs)

    monkeypatch.setattr(recorder, "insert_events", insert_events)

    def edit(target):
        gid, head = target
        return node.app.edit_item(gid, parent=head, author=AUTHOR, markdown="after retry\n")

    with ThreadPoolExecutor(6) as pool:
        receipts = list(pool.map(edit, targets))

    assert failed == [5]
    assert hook.sizes == [1, 1, 1, 1, 1, 1]  # the failed group never reached the store
    for (gid, _), receipt in zip(targets, receipts, strict=True):
        assert node.app.entity(gid).heads == [receipt.gid]
        assert markdown_of(node, gid) == "after retry\n"


def test_a_save_failing_for_everyone_fails_every_command_and_stores_nothing(node, monkeypatch):
    targets = items(node, 3)
    before = node.app.recorder.max_notification_id()
    monkeypatch.setattr(node.app.recorder, "insert_events",
                        lambda stored_events, **kwargs: (_ for _ in ()).throw(RuntimeError("disk full")))
    barrier = threading.Barrier(3)

    def edit(target):
        gid, head = target
        barrier.wait(timeout=10)
        with pytest.raises(RuntimeError, match="disk full"):
            node.app.edit_item(gid, parent=head, author=AUTHOR, markdown="lost\n")

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(edit, targets))

    monkeypatch.undo()
    assert node.app.recorder.max_notification_id() == before
    for gid, head in targets:
        assert node.app.entity(gid).heads == [head]
        assert markdown_of(node, gid) == "one\n"
