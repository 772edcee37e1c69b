"""Visibility on the node: OWNER items only for their author, TEAM items only within the author's team.

An item an editor may not see is 404 in every endpoint (never 403), so its
existence does not leak; admins see everything.
"""

from __future__ import annotations

import itertools
import uuid

import pytest

from domain.visibility import Editor, editor_may_see
from tests.api.conftest import Api, is_problem


def endpoints(gid: str, head: str) -> list[tuple[str, str, dict | None]]:
    """Every endpoint that names an item, with a request that would succeed for someone who sees it."""
    return [
        ("GET", f"/items/{gid}", None),
        ("GET", f"/items/{gid}?include_deleted=true", None),
        ("GET", f"/items/{gid}/history", None),
        ("GET", f"/items/{gid}/versions/{head}", None),
        ("GET", f"/items/{gid}/rendered", None),
        ("GET", f"/items/{gid}/backlinks", None),
        ("GET", f"/items/{gid}/lineage", None),
        ("GET", f"/items/{gid}/shares", None),
        ("POST", f"/items/{gid}/forks", {}),
        ("POST", f"/items/{gid}/shares", {"peer": "urn:domain:b.example.net", "permission": "read"}),
        ("PATCH", f"/items/{gid}", {"parent": head, "title": "taken"}),
        ("DELETE", f"/items/{gid}?parent={head}", None),
    ]


def request(api: Api, method: str, url: str, body: dict | None, headers: dict[str, str]):
    return api.client.request(method, url, json=body, headers=headers)


@pytest.mark.parametrize("scope,intruder", [("OWNER", "bob"), ("OWNER", "carol"), ("TEAM", "bob")])
def test_hidden_item_is_404_everywhere_and_unlisted(api: Api, scope: str, intruder: str) -> None:
    teams = {"ann": "red", "bob": "blue", "carol": "red"}
    ann = api.auth("ann", team="red")
    hidden = api.create(ann, title="secret", scope=scope)
    public = api.create(ann, title="public", markdown=f"{{item:{hidden['gid']}}}", scope="PUBLIC")
    api.post(f"/items/{hidden['gid']}/forks", json={"title": "fork of secret", "scope": "NETWORK"}, headers=ann)
    api.post(f"/items/{public['gid']}/forks", json={"also_from": [hidden["gid"]], "scope": "NETWORK"}, headers=ann)
    other = api.auth(intruder, team=teams[intruder])
    before = api.outbox()

    answers = [request(api, m, url, body, other) for m, url, body in endpoints(hidden["gid"], hidden["head"])]
    fork_with_hidden = api.post(f"/items/{public['gid']}/forks", json={"also_from": [hidden["gid"]]}, headers=other)
    listed = api.get("/items?include_deleted=true&limit=200", headers=other).json()["items"]
    rendered = api.get(f"/items/{public['gid']}/rendered", headers=other).json()
    public_view = api.get(f"/items/{public['gid']}", headers=other).json()
    lineage = api.get(f"/items/{public['gid']}/lineage", headers=other).json()["forks"]

    assert all(is_problem(a, 404) for a in answers), [(a.request.method, a.request.url, a.status_code) for a in answers]
    assert len({a.json()["detail"].replace(hidden["gid"], "X") for a in answers if a.request.method == "GET"}) <= 2
    assert is_problem(fork_with_hidden, 404)
    assert hidden["gid"] not in [i["gid"] for i in listed] and "secret" not in [i["title"] for i in listed]
    assert rendered["references"] == [{"gid": hidden["gid"], "kind": "item", "status": "unresolved", "href": None}]
    assert "secret" not in rendered["html"]
    assert public_view["forked_from"] == []
    assert all(hidden["gid"] not in f["forked_from"] for f in lineage)
    assert api.outbox() == before


def test_unknown_and_invisible_items_get_the_same_404(api: Api) -> None:
    hidden = api.create(api.auth("ann"), scope="OWNER")
    bob = api.auth("bob")
    unknown = str(uuid.uuid4())

    invisible = api.get(f"/items/{hidden['gid']}", headers=bob).json()
    missing = api.get(f"/items/{unknown}", headers=bob).json()

    assert invisible["detail"].replace(hidden["gid"], "X") == missing["detail"].replace(unknown, "X")
    assert invisible["type"] == missing["type"]


def test_team_item_is_visible_and_editable_within_the_team(api: Api) -> None:
    item = api.create(api.auth("ann", team="red"), scope="TEAM")
    carol = api.auth("carol", team="red")

    edited = api.patch(f"/items/{item['gid']}", json={"parent": item["head"], "title": "by carol"}, headers=carol)

    assert edited.status_code == 200 and edited.json()["updated_by"] == f"carol@{api.node.name}"
    assert item["gid"] in [i["gid"] for i in api.get("/items", headers=carol).json()["items"]]


def test_team_item_of_an_author_without_team_is_for_the_author_only(api: Api) -> None:
    item = api.create(api.auth("ann"), scope="TEAM")

    assert is_problem(api.get(f"/items/{item['gid']}", headers=api.auth("bob")), 404)
    assert api.get(f"/items/{item['gid']}", headers=api.auth("ann")).status_code == 200


def test_admin_sees_owner_and_team_items(api: Api) -> None:
    ann = api.auth("ann", team="red")
    owner, team = api.create(ann, scope="OWNER"), api.create(ann, scope="TEAM")
    admin = api.auth("root", role="admin")

    listed = {i["gid"] for i in api.get("/items", headers=admin).json()["items"]}

    assert {owner["gid"], team["gid"]} <= listed
    assert api.get(f"/items/{owner['gid']}/history", headers=admin).status_code == 200


def test_sql_filter_and_domain_rule_agree(api: Api) -> None:
    people = {"ann": "red", "bob": "blue", "cy": None}
    made = {}
    for (name, team), scope in itertools.product(people.items(), ["OWNER", "TEAM", "DOMAIN", "NETWORK", "PUBLIC"]):
        made[api.create(api.auth(name, team=team), scope=scope)["gid"]] = (scope, f"{name}@{api.node.name}", team)
    viewers = [Editor(n, f"{n}@{api.node.name}", "editor", t) for n, t in [*people.items(), ("dee", "red")]]
    viewers.append(Editor("root", f"root@{api.node.name}", "admin", None))

    for viewer in viewers:
        headers = api.auth(viewer.name, role=viewer.role, team=viewer.team)
        listed = {i["gid"] for i in api.get("/items?limit=200", headers=headers).json()["items"]}
        expected = {gid for gid, (scope, author, team) in made.items() if editor_may_see(scope, author, team, viewer)}
        assert listed == expected, viewer
