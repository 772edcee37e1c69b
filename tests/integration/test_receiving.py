"""Received transactions: dedup, equivocation, unknown parents, split heads (both stores)."""

from __future__ import annotations

import copy

import pytest

from domain.errors import Equivocation, InvalidSignature, InvalidTransaction, StaleHead, UnknownKey, UnknownParents
from domain.transaction import checksum, signing_input
from projections import conflicts, documents
from projections.transactions import count as projected_count
from tests.factory import AUTHOR, SigningPeer, trust


def outbox_length(node) -> int:
    return node.app.recorder.max_notification_id() or 0


def snapshot(node) -> dict:
    with node.db.read() as cur:
        return {
            "documents": cur.execute("SELECT * FROM documents ORDER BY item_gid").fetchall(),
            "conflicts": conflicts.list_open(cur),
            "projected": projected_count(cur),
            "stored": outbox_length(node),
        }


def test_two_edits_of_one_head_in_either_order_give_the_same_heads_and_conflict(make_node):
    peer = SigningPeer()
    created = peer.create_item(markdown="base\n")
    left, right = peer.edit(created, markdown="left\n"), peer.edit(created, markdown="right\n")
    first, second = make_node("a.example.org"), make_node("c.example.org")
    for node in (first, second):
        trust(node, peer)

    first.app.receive([created, left, right])
    second.app.receive([created])
    second.app.receive([right])
    second.app.receive([left])

    views = []
    for node in (first, second):
        with node.db.read() as cur:
            doc = documents.get(cur, created["entity_gid"])
            views.append((doc["heads"], doc["markdown"], conflicts.list_open(cur)))
    assert views[0] == views[1]
    heads, markdown, open_conflicts = views[0]
    assert heads == sorted([left["gid"], right["gid"]])
    assert open_conflicts == [{"item_gid": created["entity_gid"], "heads": heads,
                               "since": max(left["created_at"], right["created_at"]),
                               "seq": open_conflicts[0]["seq"]}]
    latest = max([left, right], key=lambda t: (t["created_at"], t["gid"]))
    assert markdown == latest["payload"]["markdown"]


def test_a_merge_naming_both_heads_clears_the_conflict(node, peer):
    created = peer.create_item(markdown="base\n")
    left, right = peer.edit(created, markdown="left\n"), peer.edit(created, markdown="right\n")
    node.app.receive([created, left, right])

    receipt = node.app.merge_item(created["entity_gid"], heads=[left["gid"], right["gid"]],
                                  author=AUTHOR, document={"markdown": "left\nright\n"})

    with node.db.read() as cur:
        assert conflicts.list_open(cur) == []
        doc = documents.get(cur, created["entity_gid"])
    assert doc["heads"] == [receipt.gid]
    assert doc["markdown"] == "left\nright\n"
    assert node.app.transaction(receipt.gid)["parents"] == sorted([left["gid"], right["gid"]])


def test_a_received_merge_clears_the_conflict_too(node, peer):
    created = peer.create_item()
    left, right = peer.edit(created, markdown="l\n"), peer.edit(created, markdown="r\n")
    node.app.receive([created, left, right])

    node.app.receive([peer.merge([left, right], "l\nr\n")])

    with node.db.read() as cur:
        assert conflicts.list_open(cur) == []


def test_a_stale_local_edit_is_refused_with_the_current_heads(node):
    created = node.app.create_item(author=AUTHOR, title="t", markdown="one\n")
    edited = node.app.edit_item(created.entity_gid, parent=created.gid, author=AUTHOR, markdown="two\n")
    before = snapshot(node)

    with pytest.raises(StaleHead) as refused:
        node.app.edit_item(created.entity_gid, parent=created.gid, author=AUTHOR, markdown="three\n")

    assert refused.value.heads == [edited.gid]
    assert snapshot(node) == before


class StoreDown(Exception):
    pass


def fail_next_insert(node, monkeypatch) -> None:
    recorder = node.app.recorder
    real = recorder.insert_events

    def insert_events(stored_events, **kwargs):
        monkeypatch.setattr(recorder, "insert_events", real)
        raise StoreDown("the database went away")

    monkeypatch.setattr(recorder, "insert_events", insert_events)


def test_a_failed_local_save_leaves_no_unsaved_change_in_the_aggregate_cache(node, monkeypatch):
    created = node.app.create_item(author=AUTHOR, title="t", markdown="one\n")
    node.app.edit_item(created.entity_gid, parent=created.gid, author=AUTHOR, markdown="two\n")  # cached now
    before = snapshot(node)
    fail_next_insert(node, monkeypatch)

    with pytest.raises(StoreDown):
        node.app.edit_item(created.entity_gid, parent=node.app.entity(created.entity_gid).heads[0],
                           author=AUTHOR, markdown="lost\n")

    item = node.app.entity(created.entity_gid)
    assert item.current["payload"]["markdown"] == "two\n"
    assert item.version == 2
    assert snapshot(node) == before
    again = node.app.edit_item(created.entity_gid, parent=item.heads[0], author=AUTHOR, markdown="three\n")
    assert node.app.entity(created.entity_gid).heads == [again.gid]


def test_a_failed_received_batch_leaves_no_unsaved_change_in_the_aggregate_cache(node, peer, monkeypatch):
    created = peer.create_item()
    node.app.receive([created])
    node.app.entity(created["entity_gid"])  # cached now
    edit = peer.edit(created, markdown="two\n")
    fail_next_insert(node, monkeypatch)

    with pytest.raises(StoreDown):
        node.app.receive([edit])

    assert node.app.entity(created["entity_gid"]).heads == [created["gid"]]
    assert [o.status for o in node.app.receive([edit])] == ["stored"]
    assert node.app.entity(created["entity_gid"]).heads == [edit["gid"]]


def test_a_duplicate_gid_is_a_no_op(node, peer):
    created = peer.create_item()
    node.app.receive([created])
    before = snapshot(node)

    outcome = node.app.receive_one(copy.deepcopy(created))

    assert outcome.status == "duplicate"
    assert snapshot(node) == before


def test_the_same_gid_with_other_content_is_refused_as_equivocation(node, peer):
    created = peer.create_item(markdown="honest\n")
    node.app.receive([created])
    before = snapshot(node)
    forged = peer.tx("item", created["entity_gid"], "item.created", [],
                     dict(created["payload"], markdown="other\n"))
    forged_same_gid = dict(forged, gid=created["gid"])
    forged_same_gid["signature"] = peer.key.sign(signing_input(forged_same_gid))

    with pytest.raises(Equivocation):
        node.app.receive_one(forged_same_gid)

    assert snapshot(node) == before


def test_an_unknown_parent_is_refused_and_nothing_is_stored(node, peer):
    created = peer.create_item()
    edit = peer.edit(created, markdown="child\n")
    before = snapshot(node)

    with pytest.raises(UnknownParents) as refused:
        node.app.receive_one(edit)
    node.app.receive([created])
    orphan = peer.edit(edit, markdown="grandchild\n")
    with pytest.raises(UnknownParents) as refused_again:
        node.app.receive_one(orphan)

    assert refused_again.value.missing == [edit["gid"]]
    assert refused.value.detail
    after = snapshot(node)
    assert after["stored"] == before["stored"] + 1  # only the creation
    assert after["projected"] == after["stored"]


@pytest.mark.parametrize("field,value", [
    ("markdown", "tampered\n"), ("title", "tampered"), ("scope", "PUBLIC"), ("author", "eve@urn:domain:b.example.net"),
    ("created_at", "2030-01-01T00:00:00Z"),
    ("gid", "0b0e5c8e-2d4c-4f5e-9a41-6f3c1d7e9a10"), ("entity_gid", "5d9f2a4b-7c1e-4b8a-b3d6-0e2f4a6c8b1d"),
    ("origin", "urn:domain:a.example.org"),
])
def test_a_transaction_changed_after_signing_is_refused(node, peer, field, value):
    created = peer.create_item()
    tampered = copy.deepcopy(created)
    if field in ("markdown", "title"):
        tampered["payload"][field] = value
        tampered["checksum"] = checksum(tampered["payload"])
    else:
        tampered[field] = value
    before = snapshot(node)

    # gid, entity_gid and origin also break the creation's owner-bound gid (checked before the signature)
    with pytest.raises((InvalidSignature, InvalidTransaction)):
        node.app.receive_one(tampered)

    assert snapshot(node) == before


def test_a_transaction_of_an_unknown_origin_is_refused(node):
    stranger = SigningPeer(host="stranger.example.com")

    with pytest.raises(UnknownKey):
        node.app.receive_one(stranger.create_item())

    assert outbox_length(node) == 0


def test_a_signature_by_another_nodes_key_is_refused(node, peer):
    impostor = SigningPeer(host=peer.host)  # claims the peer's name, signs with its own key

    with pytest.raises(UnknownKey):
        node.app.receive_one(impostor.create_item())

    assert outbox_length(node) == 0


@pytest.mark.parametrize("mutate,message", [
    (lambda t: t.update(extra="x"), "extra"),
    (lambda t: t.update(gid="not-a-uuid"), "UUID"),
    (lambda t: t.update(gid=t["gid"].upper()), "canonical"),
    (lambda t: t.update(scope="WORLD"), "scope"),
    (lambda t: t.update(parents="abc"), "parents"),
    (lambda t: t.update(created_at=1700000000), "created_at"),
    (lambda t: t["payload"].update(deleted="no"), "deleted"),
    (lambda t: t.update(checksum="0" * 64), "checksum"),
    (lambda t: t.update(kind="tag.created"), "kind"),
])
def test_malformed_transactions_are_refused_with_a_clear_message(node, peer, mutate, message):
    tx = peer.create_item()
    mutate(tx)

    with pytest.raises(InvalidTransaction) as refused:
        node.app.receive_one(tx)

    assert message in refused.value.detail
    assert outbox_length(node) == 0


def test_a_received_transaction_is_stored_exactly_as_signed(node, peer):
    created = peer.create_item(markdown="é ü 🙂\n")

    node.app.receive([created])

    assert node.app.transaction(created["gid"]) == created


def test_tags_and_shares_with_concurrent_heads_resolve_to_the_latest(node, peer):
    tag = peer.create_tag("draft")
    rename_a = peer.tx("tag", tag["entity_gid"], "tag.renamed", [tag["gid"]], {"name": "a", "deleted": False},
                       created_at="2026-02-01T00:00:00Z")
    rename_b = peer.tx("tag", tag["entity_gid"], "tag.renamed", [tag["gid"]], {"name": "b", "deleted": False},
                       created_at="2026-03-01T00:00:00Z")

    node.app.receive([tag, rename_b, rename_a])

    with node.db.read() as cur:
        row = cur.execute("SELECT name, heads FROM tags WHERE tag_gid = ?", (tag["entity_gid"],)).fetchone()
    assert row["name"] == "b"
