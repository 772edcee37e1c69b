"""Conditional GET: an ``If-None-Match`` that names the current answer is a 304 without a body; anything that
changes the answer (an edit, a second head, a renamed tag, another editor's view) changes its entity tag."""

from __future__ import annotations

from tests.api.conftest import Api
from tests.factory import SigningPeer, document, trust


def test_an_item_read_again_with_its_etag_is_304_without_a_body(api: Api) -> None:
    ann = api.auth("ann")
    item = api.create(ann)
    first = api.get(f"/items/{item['gid']}", headers=ann)

    again = api.get(f"/items/{item['gid']}", headers={**ann, "If-None-Match": first.headers["ETag"]})

    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == first.headers["ETag"] and "content-type" not in again.headers
    weak = api.get(f"/items/{item['gid']}", headers={**ann, "If-None-Match": f'"x", W/{first.headers["ETag"]}'})
    assert weak.status_code == 304  # If-None-Match compares weakly, and may list several tags
    assert api.get(f"/items/{item['gid']}", headers={**ann, "If-None-Match": "*"}).status_code == 304


def test_an_edit_changes_the_etag_and_the_old_one_gets_the_new_answer(api: Api) -> None:
    ann = api.auth("ann")
    item = api.create(ann)
    old = api.get(f"/items/{item['gid']}", headers=ann).headers["ETag"]
    edited = api.edit(ann, item, markdown="second\n")

    answer = api.get(f"/items/{item['gid']}", headers={**ann, "If-None-Match": old})

    assert answer.status_code == 200 and answer.json()["markdown"] == "second\n"
    assert answer.headers["ETag"] != old and answer.headers["ETag"].startswith(f'"{edited["head"]}.')


def test_renaming_a_tag_changes_the_etag_of_the_items_that_carry_it(api: Api) -> None:
    ann = api.auth("ann")
    tag = api.post("/tags", json={"name": "maths"}, headers=ann).json()
    item = api.create(ann, tags=[tag["gid"]])
    before = api.get(f"/items/{item['gid']}", headers=ann)
    api.patch(f"/tags/{tag['gid']}", json={"name": "mathematics"}, headers=ann)

    after = api.get(f"/items/{item['gid']}", headers={**ann, "If-None-Match": before.headers["ETag"]})

    assert after.status_code == 200, "the item's head did not change, but its answer did"
    assert after.json()["head"] == before.json()["head"] and after.json()["tags"][0]["name"] == "mathematics"


def test_a_second_head_changes_the_etag(api: Api) -> None:
    ann = api.auth("ann")
    north, south = SigningPeer(host="north.example.net"), SigningPeer(host="south.example.net")
    trust(api.node, north, south)
    base = north.tx("item", None, "item.created", [], document("Plan", "text\n"), scope="NETWORK", author="nia")
    api.node.app.receive([base, north.edit(base, markdown="one side\n", author="nia")])
    before = api.get(f"/items/{base['entity_gid']}", headers=ann)
    api.node.app.receive([south.edit(base, markdown="the other side\n", author="sam")])  # a split history

    after = api.get(f"/items/{base['entity_gid']}", headers={**ann, "If-None-Match": before.headers["ETag"]})

    assert after.status_code == 200 and len(after.json()["heads"]) == 2


def test_the_etag_of_an_item_is_also_its_if_match(api: Api) -> None:
    ann = api.auth("ann")
    item = api.create(ann)
    tag = api.get(f"/items/{item['gid']}", headers=ann).headers["ETag"]

    edited = api.patch(f"/items/{item['gid']}", json={"title": "New"}, headers={**ann, "If-Match": tag})
    stale = api.patch(f"/items/{item['gid']}", json={"title": "Newer"}, headers={**ann, "If-Match": tag})

    assert edited.status_code == 200, edited.text
    assert stale.status_code == 409 and stale.json()["heads"] == [edited.json()["head"]]


def test_lists_are_tagged_per_answer_and_per_editor(api: Api) -> None:
    ann, bob = api.auth("ann"), api.auth("bob")
    api.create(ann, scope="OWNER")
    anns = api.get("/items", headers=ann)
    bobs = api.get("/items", headers=bob)
    assert anns.headers["ETag"].startswith('W/"') and anns.headers["ETag"] != bobs.headers["ETag"]

    assert api.get("/items", headers={**ann, "If-None-Match": anns.headers["ETag"]}).status_code == 304
    assert api.get("/items", headers={**bob, "If-None-Match": anns.headers["ETag"]}).status_code == 200
    api.create(ann)
    changed = api.get("/items", headers={**ann, "If-None-Match": anns.headers["ETag"]})
    assert changed.status_code == 200 and len(changed.json()["items"]) == 2


def test_errors_are_never_304(api: Api) -> None:
    ann = api.auth("ann")
    missing = api.get("/items/00000000-0000-4000-8000-000000000000", headers={**ann, "If-None-Match": "*"})
    unauthenticated = api.get("/items", headers={"If-None-Match": "*"})

    assert missing.status_code == 404 and unauthenticated.status_code == 401
