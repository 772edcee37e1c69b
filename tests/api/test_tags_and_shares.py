"""Tags (list, create, rename, delete) and shares (grant, list, revoke) through the API."""

from __future__ import annotations

import uuid

from tests.api.conftest import Api, is_problem
from tests.factory import SigningPeer, trust

PEER = "urn:domain:b.example.net"  # a SigningPeer's name: once trusted, a node the node knows


def test_tag_lifecycle_create_rename_delete(api: Api) -> None:
    ann = api.auth("ann")

    created = api.post("/tags", json={"name": "maths"}, headers=ann)
    renamed = api.patch(f"/tags/{created.json()['gid']}", json={"name": "mathematics"}, headers=ann)
    listed = api.get("/tags", headers=ann).json()["tags"]
    deleted = api.delete(f"/tags/{created.json()['gid']}", headers=ann)

    assert created.status_code == 201 and renamed.status_code == 200
    assert renamed.json()["name"] == "mathematics" and renamed.json()["head"] != created.json()["head"]
    assert [t["name"] for t in listed] == ["mathematics"]
    assert deleted.status_code == 204
    assert api.get("/tags", headers=ann).json()["tags"] == []
    assert is_problem(api.get(f"/tags/{created.json()['gid']}", headers=ann), 404)


def test_stale_tag_rename_is_409(api: Api) -> None:
    ann = api.auth("ann")
    tag = api.post("/tags", json={"name": "a"}, headers=ann).json()
    api.patch(f"/tags/{tag['gid']}", json={"name": "b"}, headers=ann)
    before = api.outbox()

    response = api.patch(f"/tags/{tag['gid']}", json={"name": "c", "parent": tag["head"]}, headers=ann)

    assert is_problem(response, 409) and api.outbox() == before


def test_unknown_or_deleted_tags_are_kept_but_left_out_of_views(api: Api) -> None:
    ann = api.auth("ann")
    known = api.post("/tags", json={"name": "known"}, headers=ann).json()
    gone = api.post("/tags", json={"name": "gone"}, headers=ann).json()
    unknown = str(uuid.uuid4())
    item = api.create(ann, tags=[known["gid"], gone["gid"], unknown])
    api.delete(f"/tags/{gone['gid']}", headers=ann)

    view = api.get(f"/items/{item['gid']}", headers=ann).json()
    stored = api.node.app.transaction(view["head"])["payload"]["tags"]

    assert view["tags"] == [{"gid": known["gid"], "name": "known"}]
    assert sorted(stored) == sorted([known["gid"], gone["gid"], unknown])


def test_tag_arriving_later_shows_up_in_item_views(api: Api) -> None:
    ann = api.auth("ann")
    later = api.post("/tags", json={"name": "later"}, headers=ann).json()
    item = api.create(ann, tags=[later["gid"]])

    view = api.get(f"/items/{item['gid']}", headers=ann).json()

    assert view["tags"] == [{"gid": later["gid"], "name": "later"}]


def test_share_grant_list_revoke(api: Api) -> None:
    trust(api.node, SigningPeer())
    ann = api.auth("ann")
    item = api.create(ann, scope="OWNER")

    granted = api.post(f"/items/{item['gid']}/shares", json={"peer": PEER, "permission": "edit"},
                       headers=ann)
    listed = api.get(f"/items/{item['gid']}/shares", headers=ann).json()["shares"]
    revoked = api.delete(f"/items/{item['gid']}/shares/{granted.json()['gid']}", headers=ann)
    after = api.get(f"/items/{item['gid']}/shares", headers=ann).json()["shares"]
    with_revoked = api.get(f"/items/{item['gid']}/shares?include_revoked=true", headers=ann).json()["shares"]

    assert granted.status_code == 201
    assert (granted.json()["peer"], granted.json()["permission"]) == (PEER, "edit")
    assert [s["gid"] for s in listed] == [granted.json()["gid"]]
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    assert after == [] and [s["revoked"] for s in with_revoked] == [True]


def test_revoking_twice_changes_nothing(api: Api) -> None:
    trust(api.node, SigningPeer())
    ann = api.auth("ann")
    item = api.create(ann)
    share = api.post(f"/items/{item['gid']}/shares", json={"peer": PEER, "permission": "read"},
                     headers=ann).json()
    api.delete(f"/items/{item['gid']}/shares/{share['gid']}", headers=ann)
    before = api.outbox()

    again = api.delete(f"/items/{item['gid']}/shares/{share['gid']}", headers=ann)

    assert again.status_code == 200 and api.outbox() == before


def test_share_with_a_bad_peer_name_is_422(api: Api) -> None:
    ann = api.auth("ann")
    item = api.create(ann)
    before = api.outbox()

    response = api.post(f"/items/{item['gid']}/shares", json={"peer": "b.example.net", "permission": "read"},
                        headers=ann)

    assert is_problem(response, 422) and api.outbox() == before
