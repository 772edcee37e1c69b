"""Items through the editor API: create, read, edit, stale edits, delete, fork, history, versions, lists."""

from __future__ import annotations

from tests.api.conftest import Api, is_problem


def test_created_item_is_read_back_with_its_head_in_the_etag(api: Api) -> None:
    ann = api.auth("ann")

    created = api.create(ann, title="Plan", markdown="# Plan\n", scope="TEAM")
    read = api.get(f"/items/{created['gid']}", headers=ann)

    assert read.status_code == 200
    assert read.headers["ETag"].startswith(f'"{created["head"]}.')  # the head, then a digest of the answer
    body = read.json()
    assert (body["title"], body["markdown"], body["scope"]) == ("Plan", "# Plan\n", "TEAM")
    assert body["author"] == f"ann@{api.node.name}"
    assert body["heads"] == [created["head"]] and len(body["checksum"]) == 64


def test_edit_based_on_if_match_head_makes_a_new_head(api: Api) -> None:
    ann = api.auth("ann")
    item = api.create(ann)

    response = api.patch(f"/items/{item['gid']}", json={"title": "New"},
                         headers={**ann, "If-Match": f'"{item["head"]}"'})

    assert response.status_code == 200
    edited = response.json()
    assert edited["title"] == "New" and edited["markdown"] == item["markdown"]
    assert edited["head"] != item["head"] and edited["heads"] == [edited["head"]]
    assert response.headers["ETag"].startswith(f'"{edited["head"]}.')
    assert edited["checksum"] != item["checksum"]


def test_stale_edit_is_409_with_current_heads_and_stores_nothing(api: Api) -> None:
    ann = api.auth("ann")
    item = api.create(ann)
    current = api.edit(ann, item, markdown="second\n")
    before = api.outbox()

    response = api.patch(f"/items/{item['gid']}", json={"parent": item["head"], "markdown": "late\n"}, headers=ann)

    assert is_problem(response, 409)
    assert response.json()["heads"] == [current["head"]]
    assert api.outbox() == before


def test_edit_without_a_head_is_428(api: Api) -> None:
    ann = api.auth("ann")
    item = api.create(ann)
    before = api.outbox()

    response = api.patch(f"/items/{item['gid']}", json={"title": "x"}, headers=ann)

    assert is_problem(response, 428)
    assert api.outbox() == before


def test_deleted_item_is_404_unless_include_deleted(api: Api) -> None:
    ann = api.auth("ann")
    item = api.create(ann)

    deleted = api.delete(f"/items/{item['gid']}", headers={**ann, "If-Match": f'"{item["head"]}"'})

    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert is_problem(api.get(f"/items/{item['gid']}", headers=ann), 404)
    assert api.get(f"/items/{item['gid']}?include_deleted=true", headers=ann).json()["deleted"] is True
    assert item["gid"] not in [i["gid"] for i in api.get("/items", headers=ann).json()["items"]]
    listed = api.get("/items?include_deleted=true", headers=ann).json()["items"]
    assert item["gid"] in [i["gid"] for i in listed]


def test_history_is_the_transaction_dag(api: Api) -> None:
    ann = api.auth("ann")
    item = api.create(ann)
    edited = api.edit(ann, item, markdown="two\n")
    deleted = api.delete(f"/items/{item['gid']}?parent={edited['head']}", headers=ann).json()

    history = api.get(f"/items/{item['gid']}/history?include_deleted=true", headers=ann).json()

    nodes = history["nodes"]
    assert [n["kind"] for n in nodes] == ["item.created", "item.edited", "item.deleted"]
    assert [n["parents"] for n in nodes] == [[], [item["head"]], [edited["head"]]]
    assert [n["gid"] for n in nodes] == [item["head"], edited["head"], deleted["head"]]
    assert history["heads"] == [deleted["head"]]
    assert all(n["author"] == f"ann@{api.node.name}" and n["origin"] == api.node.name for n in nodes)
    assert all(n["created_at"].endswith("Z") and len(n["checksum"]) == 64 for n in nodes)


def test_old_version_is_the_stored_signed_transaction(api: Api) -> None:
    ann = api.auth("ann")
    item = api.create(ann, title="v1", markdown="one\n")
    api.edit(ann, item, title="v2")

    response = api.get(f"/items/{item['gid']}/versions/{item['head']}", headers=ann)

    assert response.status_code == 200
    version = response.json()
    assert version["payload"]["title"] == "v1" and version["kind"] == "item.created"
    assert version == api.node.app.transaction(item["head"])


def test_version_of_another_item_is_404(api: Api) -> None:
    ann = api.auth("ann")
    one, other = api.create(ann), api.create(ann)

    response = api.get(f"/items/{one['gid']}/versions/{other['head']}", headers=ann)

    assert is_problem(response, 404)


def test_fork_from_two_items_lists_both_sources_and_lineage_is_transitive(api: Api) -> None:
    ann = api.auth("ann")
    a, b = api.create(ann, title="A"), api.create(ann, title="B")

    fork = api.post(f"/items/{a['gid']}/forks", json={"also_from": [b["gid"]]}, headers=ann)
    grandchild = api.post(f"/items/{fork.json()['gid']}/forks", json={"title": "C"}, headers=ann).json()

    assert fork.status_code == 201
    assert fork.json()["title"] == "A" and sorted(fork.json()["forked_from"]) == sorted([a["gid"], b["gid"]])
    lineage = api.get(f"/items/{a['gid']}/lineage", headers=ann).json()["forks"]
    assert [(f["gid"], f["depth"]) for f in lineage] == [(fork.json()["gid"], 1), (grandchild["gid"], 2)]
    assert lineage[1]["forked_from"] == [fork.json()["gid"]]
    assert [f["gid"] for f in api.get(f"/items/{b['gid']}/lineage", headers=ann).json()["forks"]] == [
        fork.json()["gid"], grandchild["gid"]]


def test_list_filters_by_tag_scope_and_title_text(api: Api) -> None:
    ann = api.auth("ann")
    tag = api.post("/tags", json={"name": "maths"}, headers=ann).json()
    tagged = api.create(ann, title="Fractions 101", tags=[tag["gid"]], scope="PUBLIC")
    api.create(ann, title="fractions again", scope="NETWORK")
    api.create(ann, title="Other 100%_x", scope="PUBLIC")

    by_tag = api.get(f"/items?tag={tag['gid']}", headers=ann).json()["items"]
    by_scope = api.get("/items?scope=PUBLIC", headers=ann).json()["items"]
    by_text = api.get("/items?q=FRACTIONS", headers=ann).json()["items"]
    by_wildcard = api.get("/items?q=0%25_", headers=ann).json()["items"]

    assert [i["gid"] for i in by_tag] == [tagged["gid"]]
    assert by_tag[0]["tags"] == [{"gid": tag["gid"], "name": "maths"}]
    assert {i["title"] for i in by_scope} == {"Fractions 101", "Other 100%_x"}
    assert {i["title"] for i in by_text} == {"Fractions 101", "fractions again"}
    assert [i["title"] for i in by_wildcard] == ["Other 100%_x"]


def test_pages_cover_every_item_once_in_stable_order(api: Api) -> None:
    ann = api.auth("ann")
    made = [api.create(ann, title=f"item {i}")["gid"] for i in range(7)]

    seen, cursor, pages = [], None, 0
    while pages < 10:  # bounded
        page = api.get("/items", params={"limit": 3, **({"cursor": cursor} if cursor else {})}, headers=ann).json()
        seen += [i["gid"] for i in page["items"]]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break

    assert pages == 3
    assert seen == made


def test_bad_cursor_is_400(api: Api) -> None:
    response = api.get("/items?cursor=not-a-cursor", headers=api.auth())

    assert is_problem(response, 400)
