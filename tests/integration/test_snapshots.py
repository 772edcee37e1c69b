"""Snapshots taken from the aggregate in memory equal the library's reconstruction (both stores)."""

from __future__ import annotations

from uuid import UUID

from domain.item import Item
from tests.factory import AUTHOR, history


def stored_snapshots(node, gid: str) -> list:
    return list(node.app.snapshots.get(UUID(gid)))


def reconstructed(node, gid: str, version: int) -> dict:
    """The state at ``version`` replayed from the events alone, as the library would snapshot it."""
    events = node.app.events.get(UUID(gid), lte=version)
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return Item.Snapshot.take(aggregate).state


def test_local_edits_snapshot_from_memory_what_replaying_the_events_gives(node):
    created = node.app.create_item(author=AUTHOR, title="t", markdown="0\n")
    head = created.gid
    for i in range(1, 230):
        head = node.app.edit_item(created.entity_gid, parent=head, author=AUTHOR, markdown=f"{i}\n").gid

    snapshots = stored_snapshots(node, created.entity_gid)
    assert [s.originator_version for s in snapshots] == [100, 200]
    for snapshot in snapshots:
        assert snapshot.state == reconstructed(node, created.entity_gid, snapshot.originator_version)

    fresh = type(node)(node.settings, node.config, node.keyring)  # no cache: snapshot + 30 events
    loaded = fresh.app.entity(created.entity_gid)
    assert loaded.version == 230 and loaded.heads == [head]
    assert loaded.parents_of == node.app.entity(created.entity_gid).parents_of
    fresh.close()


def test_a_received_batch_past_the_interval_snapshots_the_right_version(node, peer):
    txs = history(peer, 1, 149)  # one item: the 100th event is mid-batch

    node.app.receive(txs)

    # One snapshot, of the version the batch left it at (taken from memory, not rebuilt from the store at 100)
    gid = txs[0]["entity_gid"]
    snapshots = stored_snapshots(node, gid)
    assert [s.originator_version for s in snapshots] == [150]
    assert snapshots[0].state == reconstructed(node, gid, 150)
