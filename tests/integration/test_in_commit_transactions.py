"""The in-commit projection is handed the saved transactions themselves (both stores), not only their bytes."""

from __future__ import annotations

from uuid import uuid4

import orjson
from eventsourcing.persistence import StoredEvent

from domain.commit import CommitExtras, IndexEntry
from infrastructure.persistence.database import transactions_of
from tests.factory import AUTHOR, history


class Recording:
    """Wraps the in-commit hook and keeps what each call was given."""

    def __init__(self, node) -> None:
        self.real = node.app.recorder.in_commit
        self.calls: list[tuple[list[tuple[int, bytes]], list[dict] | None]] = []
        node.app.recorder.in_commit = self
        # On PostgreSQL the projection is rehearsed before the lock and the hook called only when the rehearsal
        # does not hold (tests/integration/test_rehearsal.py): here the hook is what is tested, every time.
        node.app.recorder.rehearser = None

    def __call__(self, cur, stored, txs, views=None):
        self.calls.append((stored, txs))
        return self.real(cur, stored, txs, views)


def test_local_and_received_saves_hand_the_projection_the_transactions_they_stored(node, peer):
    hook = Recording(node)
    item = node.app.create_item(author=AUTHOR, title="t", markdown="one\n")
    node.app.edit_item(item.entity_gid, parent=item.gid, author=AUTHOR, markdown="two\n")
    received = history(peer, 3, 2)
    node.app.receive(received)
    assert len(hook.calls) >= 3
    for stored, txs in hook.calls:
        assert txs is not None
        assert txs == [orjson.loads(state)["tx"] for _, state in stored]  # exactly what was stored
    assert [tx for _, txs in hook.calls for tx in txs][-len(received):] == received


def test_the_transactions_are_given_only_when_the_index_names_each_event_in_order():
    ids = [uuid4(), uuid4()]
    events = [StoredEvent(i, 1, "topic", b"{}") for i in ids]
    txs = [{"gid": "a"}, {"gid": "b"}]
    entries = [IndexEntry(tx["gid"], i, 1, tx) for i, tx in zip(ids, txs, strict=True)]
    assert transactions_of(events, CommitExtras(entries)) == txs
    assert transactions_of(events, CommitExtras(entries[::-1])) is None  # another order
    assert transactions_of(events, CommitExtras(entries[:1])) is None  # not every event
    assert transactions_of(events, CommitExtras([IndexEntry("a", ids[0], 1), entries[1]])) is None  # no tx
    assert transactions_of(events, CommitExtras([entries[0], IndexEntry("b", ids[1], 2, txs[1])])) is None
    assert transactions_of(events, CommitExtras()) is None
