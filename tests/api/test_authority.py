"""The authority rules on the editor API: another node's item (received from a trusted peer) can be
edited here only as that node allows; refusals are 403 problem documents and store nothing."""

from __future__ import annotations

from tests.api.conftest import is_problem


def received(api, peer, scope: str) -> dict:
    created = peer.create_item("theirs", "their text\n", scope=scope)
    assert api.node.app.receive_one(created).status == "stored"
    return created


def test_an_editor_may_edit_another_nodes_network_item_but_not_widen_or_delete_it(api, peer):
    created = received(api, peer, "NETWORK")
    admin = api.auth("root", role="admin")
    before = api.outbox()

    widened = api.patch(f"/items/{created['entity_gid']}", json={"parent": created["gid"], "scope": "PUBLIC"},
                        headers=admin)
    deleted = api.delete(f"/items/{created['entity_gid']}", headers={**admin, "If-Match": f'"{created["gid"]}"'})

    assert is_problem(widened, 403)
    assert "only its owner changes its scope (NETWORK -> PUBLIC)" in widened.json()["detail"]
    assert is_problem(deleted, 403) and "only its owner can make item.deleted" in deleted.json()["detail"]
    assert api.outbox() == before
    edited = api.patch(f"/items/{created['entity_gid']}", json={"parent": created["gid"], "markdown": "ours too\n"},
                       headers=admin)
    assert edited.status_code == 200 and edited.json()["scope"] == "NETWORK"


def test_another_nodes_owner_item_is_not_edited_here(api, peer):
    created = received(api, peer, "OWNER")
    before = api.outbox()

    response = api.patch(f"/items/{created['entity_gid']}", json={"parent": created["gid"], "markdown": "mine\n"},
                         headers=api.auth("root", role="admin"))

    assert is_problem(response, 403)
    assert "is OWNER: only its owner or a node holding an edit share" in response.json()["detail"]
    assert api.outbox() == before
