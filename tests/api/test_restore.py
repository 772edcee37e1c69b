"""Restoring a deleted item (``POST /items/{gid}/restore``): an ``item.restored`` transaction based on the
tombstone, with the state from before the deletion; its owner only, as for a deletion, here and when received
from a peer; anything else is a clear refusal that stores nothing."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api, is_problem
from tests.factory import SigningPeer, document, trust


def deleted_item(api: Api, headers: dict[str, str]) -> dict[str, Any]:
    item = api.create(headers, title="Plan", markdown="keep me\n")
    gone = api.delete(f"/items/{item['gid']}", headers={**headers, "If-Match": f'"{item["head"]}"'})
    assert gone.status_code == 200 and gone.json()["deleted"]
    return gone.json()


def test_a_deleted_item_is_restored_with_its_state_before_the_deletion(api: Api) -> None:
    ann = api.auth("ann")
    gone = deleted_item(api, ann)

    restored = api.post(f"/items/{gone['gid']}/restore", headers={**ann, "If-Match": f'"{gone["head"]}"'})

    assert restored.status_code == 200, restored.text
    body = restored.json()
    assert (body["deleted"], body["title"], body["markdown"]) == (False, "Plan", "keep me\n")
    assert api.get(f"/items/{gone['gid']}", headers=ann).status_code == 200
    history = api.get(f"/items/{gone['gid']}/history", headers=ann).json()
    assert [n["kind"] for n in history["nodes"]] == ["item.created", "item.deleted", "item.restored"]
    assert history["nodes"][-1]["parents"] == [gone["head"]]


def test_restoring_what_is_not_deleted_or_not_a_head_is_refused_and_stores_nothing(api: Api) -> None:
    ann = api.auth("ann")
    live = api.create(ann)
    gone = deleted_item(api, ann)
    before = api.outbox()

    not_deleted = api.post(f"/items/{live['gid']}/restore", params={"parent": live["head"]}, headers=ann)
    created = api.get(f"/items/{gone['gid']}/history", params={"include_deleted": True},
                      headers=ann).json()["nodes"][0]["gid"]
    stale = api.post(f"/items/{gone['gid']}/restore", params={"parent": created}, headers=ann)  # not a head
    unnamed = api.post(f"/items/{gone['gid']}/restore", headers=ann)

    assert is_problem(not_deleted, 409) and "nothing to restore" in not_deleted.json()["detail"]
    assert is_problem(stale, 409) and is_problem(unnamed, 428)
    assert api.outbox() == before


def test_only_the_owner_restores_here_and_from_a_peer(api: Api, peer: SigningPeer) -> None:
    created = peer.create_item("theirs", "their text\n")
    gone = peer.tx("item", created["entity_gid"], "item.deleted", [created["gid"]],
                   document("theirs", "their text\n") | {"deleted": True})
    assert [o.status for o in api.node.app.receive([created, gone])] == ["stored", "stored"]
    before = api.outbox()

    here = api.post(f"/items/{created['entity_gid']}/restore", params={"parent": gone["gid"]},
                    headers=api.auth("root", role="admin"))
    other = SigningPeer(host="other.example.net")
    trust(api.node, other)
    forged = other.tx("item", created["entity_gid"], "item.restored", [gone["gid"]], document("theirs", "x\n"))
    lying = peer.tx("item", created["entity_gid"], "item.restored", [gone["gid"]],
                    document("theirs", "x\n") | {"deleted": True})

    assert is_problem(here, 403) and "only its owner can make item.restored" in here.json()["detail"]
    outcomes = api.node.app.receive([forged, lying])
    assert [o.status for o in outcomes] == ["refused", "refused"]
    assert "only its owner can make item.restored" in str(outcomes[0].error)
    assert "must carry deleted: false" in str(outcomes[1].error)
    assert api.outbox() == before

    owners = peer.tx("item", created["entity_gid"], "item.restored", [gone["gid"]], document("theirs", "back\n"))
    assert api.node.app.receive_one(owners).status == "stored"
    assert api.get(f"/items/{created['entity_gid']}", headers=api.auth("ann")).json()["markdown"] == "back\n"
