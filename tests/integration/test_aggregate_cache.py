"""The aggregate cache watch (domain/aggregate_cache.py): a group commit takes cached aggregates as they are
unless another writer on the same database stored to them since (both stores; two nodes opened on one data
dir and database stand for two serving processes)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from domain import aggregate_cache
from infrastructure.node import Node
from tests.factory import AUTHOR


@pytest.fixture
def twins(node: Node) -> Iterator[tuple[Node, Node]]:
    other = Node.open(node.settings)
    yield node, other
    other.close()


def edit(node: Node, gid: str, parent: str, markdown: str) -> str:
    return node.app.edit_item(gid, parent=parent, author=AUTHOR, markdown=markdown).gid


def fast_forwards(node: Node, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The aggregates the repository is asked for (fast-forwarded or read whole), counted."""
    asked: list[Any] = []
    get = node.app.repository.get

    def counted(aggregate_id: Any, **kwargs: Any) -> Any:
        asked.append(aggregate_id)
        return get(aggregate_id, **kwargs)

    monkeypatch.setattr(node.app.repository, "get", counted)
    return asked


def test_an_edit_sees_what_another_writer_stored_meanwhile(twins: tuple[Node, Node],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = twins
    created = a.app.create_item(author=AUTHOR, title="t", markdown="one\n")
    head = edit(a, created.entity_gid, created.gid, "two\n")  # cached in a, the watch knows its position
    asked = fast_forwards(a, monkeypatch)

    head = edit(a, created.entity_gid, head, "three\n")  # nothing stored by others: taken from the cache
    assert asked == []
    head = edit(b, created.entity_gid, head, "four\n")  # the other writer
    head = edit(a, created.entity_gid, head, "five\n")  # a's cached aggregate lacked "four": fast-forwarded

    assert len(asked) == 1
    assert a.app.entity(created.entity_gid).heads == [head]
    assert a.app.entity(created.entity_gid).head_states[head]["payload"]["markdown"] == "five\n"


def test_a_save_that_does_not_follow_the_position_leaves_it(twins: tuple[Node, Node]) -> None:
    """b stores between a's look and a's save: a's position stays, and its next look finds b's event."""
    a, b = twins
    first = a.app.create_item(author=AUTHOR, title="one", markdown="x\n")
    second = a.app.create_item(author=AUTHOR, title="two", markdown="x\n")
    edit(a, first.entity_gid, first.gid, "y\n")
    position = a.app.cache_watch.position
    assert position == a.app.recorder.max_notification_id()

    head = edit(b, second.entity_gid, second.gid, "by b\n")
    a.app.cache_watch.saved(position + 2, position + 2)  # as if a stored right after b, before looking
    assert a.app.cache_watch.position == position

    assert edit(a, second.entity_gid, head, "by a\n")  # refreshed: b's event seen, the aggregate fast-forwarded


def test_far_behind_the_cache_is_dropped(twins: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aggregate_cache, "MAX_BEHIND", 2)
    a, b = twins
    made = [a.app.create_item(author=AUTHOR, title=f"t{i}", markdown="x\n") for i in range(3)]
    heads = {r.entity_gid: edit(a, r.entity_gid, r.gid, "y\n") for r in made}
    heads = {gid: edit(b, gid, head, "by b\n") for gid, head in heads.items()}  # three events: past the limit

    for gid, head in heads.items():
        edit(a, gid, head, "by a\n")

    assert a.app.cache_watch.position == a.app.recorder.max_notification_id()
    for gid in heads:
        assert a.app.entity(gid).head_states[a.app.entity(gid).heads[0]]["payload"]["markdown"] == "by a\n"


def test_what_this_process_stored_after_another_is_not_read_back(twins: tuple[Node, Node],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Two serving processes writing in turn: b stores between a's look and a's save, so a's save does not follow
    a's position, and a's next look reads a's own event too. That one is in a's cache already (changed in place):
    only b's aggregate is read from the store."""
    a, b = twins
    mine = a.app.create_item(author=AUTHOR, title="a's", markdown="x\n")
    theirs = a.app.create_item(author=AUTHOR, title="b's", markdown="x\n")
    mine_head = edit(a, mine.entity_gid, mine.gid, "y\n")
    theirs_head = edit(a, theirs.entity_gid, theirs.gid, "y\n")
    look, between = a.app.cache_watch.refresh, []

    def look_then_b_stores() -> None:
        look()
        if not between:  # once: b's edit lands after a's look, before a's insert
            between.append(edit(b, theirs.entity_gid, theirs_head, "by b\n"))

    monkeypatch.setattr(a.app.cache_watch, "refresh", look_then_b_stores)
    position = a.app.cache_watch.position
    mine_head = edit(a, mine.entity_gid, mine_head, "by a, after b\n")
    assert a.app.cache_watch.position == position  # a's save did not follow it
    asked = fast_forwards(a, monkeypatch)

    mine_head = edit(a, mine.entity_gid, mine_head, "and again\n")  # the look reads b's event and a's own

    assert asked == []  # a's own item taken from the cache as it is
    edit(a, theirs.entity_gid, between[0], "a edits b's\n")  # b's item: fast-forwarded, as before
    assert asked == [UUID(theirs.entity_gid)]
    assert a.app.cache_watch.position == a.app.recorder.max_notification_id()
    assert a.app.entity(mine.entity_gid).head_states[mine_head]["payload"]["markdown"] == "and again\n"
