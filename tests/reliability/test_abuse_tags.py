"""Abuse: OWNER and TEAM tags are seen and changed only by whom the item rule lets (issue 12, finding 7).

A tag follows the rule items follow (``domain/visibility.py``) on its own
scope and author: an OWNER tag is its author's, a TEAM tag its author's
team's, admins see every tag. A tag an editor may not see answers 404 with
the detail of an unknown tag (no existence oracle), is left out of the tag
list and of every item's tags, and cannot be renamed or deleted; what a
peer gets of it is what it gets of an item of that scope: nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from domain.visibility import Editor, editor_may_see
from infrastructure.node import Node
from infrastructure.peers import Peer
from tests.api.conftest import Api, is_problem
from tests.factory import SigningPeer, trust


@pytest.fixture
def api(node: Node) -> Iterator[Api]:
    client = Api(node)
    yield client
    client.client.close()


def tag(api: Api, headers: dict[str, str], name: str, scope: str) -> dict[str, Any]:
    response = api.post("/tags", json={"name": name, "scope": scope}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def detail(response: Any, gid: str) -> str:
    return response.json()["detail"].replace(gid, "X")


@pytest.mark.parametrize("scope,intruder,team", [("OWNER", "bob", "red"), ("TEAM", "bob", "blue")])
def test_hidden_tag_is_404_like_an_unknown_one_and_cannot_be_renamed_or_deleted(
        api: Api, scope: str, intruder: str, team: str) -> None:
    ann = api.auth("ann", team="red")
    secret = tag(api, ann, "secret plans", scope)
    item = api.create(ann, title="shared item", scope="NETWORK", tags=[secret["gid"]])
    other = api.auth(intruder, team=team)
    unknown = str(uuid.uuid4())
    before = api.outbox()

    read = api.get(f"/tags/{secret['gid']}", headers=other)
    missing = api.get(f"/tags/{unknown}", headers=other)
    renamed = api.patch(f"/tags/{secret['gid']}", json={"name": "mine now"}, headers=other)
    deleted = api.delete(f"/tags/{secret['gid']}", headers=other)
    listed = api.get("/tags", headers=other).json()["tags"]
    item_view = api.get(f"/items/{item['gid']}", headers=other).json()
    item_list = api.get("/items", headers=other).json()["items"]

    assert is_problem(read, 404) and is_problem(missing, 404)
    assert detail(read, secret["gid"]) == detail(missing, unknown) and read.json()["type"] == missing.json()["type"]
    assert is_problem(renamed, 404) and detail(renamed, secret["gid"]) == detail(missing, unknown)
    assert is_problem(deleted, 404) and detail(deleted, secret["gid"]) == detail(missing, unknown)
    assert secret["gid"] not in [t["gid"] for t in listed]
    assert item_view["tags"] == []
    assert [i["tags"] for i in item_list if i["gid"] == item["gid"]] == [[]]
    assert "secret plans" not in str(api.get(f"/items/{item['gid']}", headers=other).text)
    assert api.outbox() == before
    assert api.get(f"/tags/{secret['gid']}", headers=ann).json()["name"] == "secret plans"
    assert api.get(f"/items/{item['gid']}", headers=ann).json()["tags"] == [
        {"gid": secret["gid"], "name": "secret plans"}]


def test_team_tag_is_seen_and_renamed_within_the_team_and_admins_see_every_tag(api: Api) -> None:
    ann = api.auth("ann", team="red")
    team_tag = tag(api, ann, "red only", "TEAM")
    owner_tag = tag(api, ann, "ann only", "OWNER")
    carol = api.auth("carol", team="red")
    admin = api.auth("root", role="admin")

    renamed = api.patch(f"/tags/{team_tag['gid']}", json={"name": "red team"}, headers=carol)
    carol_sees = {t["gid"] for t in api.get("/tags", headers=carol).json()["tags"]}
    admin_sees = {t["gid"] for t in api.get("/tags", headers=admin).json()["tags"]}

    assert renamed.status_code == 200 and renamed.json()["name"] == "red team"
    assert carol_sees == {team_tag["gid"]}
    assert admin_sees == {team_tag["gid"], owner_tag["gid"]}
    assert is_problem(api.get(f"/tags/{owner_tag['gid']}", headers=carol), 404)
    assert api.get(f"/tags/{owner_tag['gid']}", headers=admin).status_code == 200


def test_team_tag_of_an_author_without_team_is_for_the_author_only(api: Api) -> None:
    mine = tag(api, api.auth("ann"), "no team", "TEAM")

    assert is_problem(api.get(f"/tags/{mine['gid']}", headers=api.auth("bob")), 404)
    assert api.get(f"/tags/{mine['gid']}", headers=api.auth("ann")).status_code == 200


def test_tag_list_follows_the_item_rule_for_every_scope_author_and_viewer(api: Api) -> None:
    people = {"ann": "red", "bob": "blue", "cy": None}
    made = {}
    for name, team in people.items():
        for scope in ("OWNER", "TEAM", "DOMAIN", "NETWORK", "PUBLIC"):
            made[tag(api, api.auth(name, team=team), f"{name} {scope}", scope)["gid"]] = (
                scope, f"{name}@{api.node.name}", team)
    viewers = [Editor(n, f"{n}@{api.node.name}", "editor", t) for n, t in [*people.items(), ("dee", "red")]]

    for viewer in viewers:
        listed = {t["gid"] for t in api.get("/tags", headers=api.auth(viewer.name, team=viewer.team)).json()["tags"]}
        expected = {gid for gid, (scope, author, team) in made.items() if editor_may_see(scope, author, team, viewer)}
        assert listed == expected, viewer


def test_editing_an_items_tags_keeps_the_tags_the_editor_cannot_see(api: Api) -> None:
    ann = api.auth("ann")
    private = tag(api, ann, "ann's", "OWNER")
    common = tag(api, ann, "common", "NETWORK")
    item = api.create(ann, scope="NETWORK", tags=[private["gid"], common["gid"]])
    bob = api.auth("bob")
    seen_by_bob = api.get(f"/items/{item['gid']}", headers=bob).json()

    api.edit(bob, seen_by_bob, tags=[])

    assert api.get(f"/items/{item['gid']}", headers=ann).json()["tags"] == [{"gid": private["gid"], "name": "ann's"}]


def test_another_nodes_tag_is_seen_but_its_deletion_is_403(api: Api) -> None:
    remote = SigningPeer()
    trust(api.node, remote)
    created = remote.create_tag("from b")
    api.node.app.receive([created])
    bob = api.auth("bob")

    read = api.get(f"/tags/{created['entity_gid']}", headers=bob)
    deleted = api.delete(f"/tags/{created['entity_gid']}", headers=bob)

    assert read.status_code == 200
    assert is_problem(deleted, 403)


def test_peers_get_owner_and_team_tags_as_they_get_items_of_those_scopes(api: Api) -> None:
    ann = api.auth("ann", team="red")
    hidden = [tag(api, ann, "o", "OWNER")["gid"], tag(api, ann, "t", "TEAM")["gid"]]
    hidden_items = [api.create(ann, scope="OWNER")["gid"], api.create(ann, scope="TEAM")["gid"]]
    shown = tag(api, ann, "n", "NETWORK")["gid"]
    peer = "urn:domain:b.example.net"
    api.node.peers.add(Peer(name=peer, base_url="http://127.0.0.1:9", send_types=("item", "tag", "share"),
                            accept_types=("item", "tag", "share"), created_at="2026-01-01T00:00:00Z"))

    served = {e.tx["entity_gid"] for e in api.node.federation.outbox.page(
        peer, None, max_count=500, max_bytes=1 << 30).entries}
    anonymous = {e.tx["entity_gid"] for e in api.node.federation.outbox.page(
        None, None, max_count=500, max_bytes=1 << 30).entries}

    assert shown in served and not served & {*hidden, *hidden_items}
    assert not anonymous & {*hidden, *hidden_items, shown}
