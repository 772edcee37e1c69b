"""Full-text search (``GET /search``) on both stores: title, body and tag names, ranked, highlighted,
paged, kept in step with edits, deletions and tag renames, rebuilt with the other views, and never finding
what the editor may not see."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from domain.visibility import Editor, editor_may_see
from infrastructure.node import Node, init_node
from infrastructure.settings import Settings
from tests.api.conftest import Api, is_problem


def search(api: Api, headers: dict[str, str], q: str, **params: Any) -> dict[str, Any]:
    answer = api.get("/search", params={"q": q, **params}, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def titles(page: dict[str, Any]) -> list[str]:
    return [hit["title"] for hit in page["items"]]


def test_search_finds_words_of_the_title_body_and_tags_best_first_with_highlights(api: Api) -> None:
    ann = api.auth("ann")
    tag = api.post("/tags", json={"name": "museum"}, headers=ann).json()["gid"]
    api.create(ann, title="Field trip", markdown="We visit the Rijksmuseum and a zoo.\n")
    api.create(ann, title="Museum lessons", markdown="Paintings.\n")
    api.create(ann, title="Reading list", markdown="Books about a <b>museum</b>.\n")
    api.create(ann, title="Excursions", markdown="Buses.\n", tags=[tag])
    api.create(ann, title="Unrelated", markdown="Nothing here.\n")

    found = search(api, ann, "museum")

    assert titles(found)[:2] == ["Museum lessons", "Excursions"]  # the title first, then the tag
    assert set(titles(found)) == {"Museum lessons", "Excursions", "Reading list"}
    reading = next(hit for hit in found["items"] if hit["title"] == "Reading list")
    body = reading["highlight"]["body"]  # escaped, then marked (PostgreSQL's fragments also drop tag-like text)
    assert "<mark>museum</mark>" in body and "<b>" not in body and "Books about" in body
    assert found["items"][0]["highlight"]["title"] == "<mark>Museum</mark> lessons"
    assert titles(search(api, ann, "zoo rijks")) == ["Field trip"]  # every word, each also as a word's start
    assert search(api, ann, "zoo paintings")["items"] == []
    assert search(api, ann, "!!! ***")["items"] == []  # no word at all: nothing, not an error


def test_search_follows_edits_deletions_tag_renames_and_a_rebuild(api: Api) -> None:
    ann = api.auth("ann")
    tag = api.post("/tags", json={"name": "history"}, headers=ann).json()
    item = api.create(ann, title="Plan", markdown="castle\n", tags=[tag["gid"]])
    gone = api.create(ann, title="Old plan", markdown="castle\n")

    api.edit(ann, item, markdown="fortress\n")
    api.delete(f"/items/{gone['gid']}", headers={**ann, "If-Match": f'"{gone["head"]}"'})
    renamed = api.patch(f"/tags/{tag['gid']}", json={"name": "geography"}, headers=ann)
    assert renamed.status_code == 200, renamed.text

    assert search(api, ann, "castle")["items"] == [] and titles(search(api, ann, "fortress")) == ["Plan"]
    assert search(api, ann, "history")["items"] == [] and titles(search(api, ann, "geography")) == ["Plan"]
    api.node.projector.rebuild()
    assert titles(search(api, ann, "fortress")) == ["Plan"] and titles(search(api, ann, "geography")) == ["Plan"]


def test_search_pages_and_filters(api: Api) -> None:
    ann = api.auth("ann")
    tag = api.post("/tags", json={"name": "maths"}, headers=ann).json()["gid"]
    for n in range(5):
        api.create(ann, title=f"Fractions {n}", markdown="fractions " * (n + 1), tags=[tag] if n % 2 else [])

    first = search(api, ann, "fractions", limit=2)
    second = search(api, ann, "fractions", limit=2, cursor=first["next"])
    third = search(api, ann, "fractions", limit=2, cursor=second["next"])

    everything = titles(first) + titles(second) + titles(third)
    assert sorted(everything) == [f"Fractions {n}" for n in range(5)] and third["next"] is None
    assert sorted(titles(search(api, ann, "fractions", tag=tag))) == ["Fractions 1", "Fractions 3"]
    assert is_problem(api.get("/search", params={"q": "x", "cursor": "bogus"}, headers=ann), 400)
    assert is_problem(api.get("/search", params={"q": ""}, headers=ann), 422)


def test_search_never_finds_what_the_editor_may_not_see(api: Api) -> None:
    ann, bo = api.auth("ann"), api.auth("bo")
    secret_tag = api.post("/tags", json={"name": "zebra", "scope": "OWNER"}, headers=ann).json()["gid"]
    api.create(ann, title="Ann's zebra notes", markdown="zebra\n", scope="OWNER")
    api.create(ann, title="Shared page", markdown="nothing\n", tags=[secret_tag])

    assert search(api, bo, "zebra")["items"] == []  # neither the OWNER item nor the OWNER tag's name
    assert titles(search(api, ann, "zebra")) == ["Ann's zebra notes"]


def test_search_and_the_domain_rule_agree_for_every_scope_and_team_and_after_a_scope_change(api: Api) -> None:
    people = {"ann": "red", "bob": "blue", "cy": None}
    made: dict[str, tuple[str, str, str | None]] = {}
    items = {}
    for (name, team), scope in itertools.product(people.items(), ["OWNER", "TEAM", "DOMAIN", "NETWORK", "PUBLIC"]):
        item = api.create(api.auth(name, team=team), title=f"{name} {scope}", markdown="apple pie\n", scope=scope)
        made[item["gid"]], items[item["gid"]] = (scope, f"{name}@{api.node.name}", team), item
    viewers = [Editor(n, f"{n}@{api.node.name}", "editor", t) for n, t in [*people.items(), ("dee", "red")]]
    viewers.append(Editor("root", f"root@{api.node.name}", "admin", None))

    def check() -> None:
        for viewer in viewers:
            headers = api.auth(viewer.name, role=viewer.role, team=viewer.team)
            found = {hit["gid"] for hit in search(api, headers, "apple", limit=100)["items"]}
            expected = {gid for gid, (scope, author, team) in made.items()
                        if editor_may_see(scope, author, team, viewer)}
            assert found == expected, viewer
            for scope in ("TEAM", "PUBLIC"):
                only = {hit["gid"] for hit in search(api, headers, "apple", limit=100, scope=scope)["items"]}
                assert only == {gid for gid in expected if made[gid][0] == scope}, (viewer, scope)

    check()
    for gid, (scope, author, team) in list(made.items()):  # every public item becomes its owner's, and back
        name = author.split("@")[0]
        new = {"PUBLIC": "OWNER", "OWNER": "PUBLIC"}.get(scope)
        if new:
            api.edit(api.auth(name, team=team), items[gid], scope=new)
            made[gid] = (new, author, team)
    check()


@pytest.mark.parametrize("language, stored, asked", [
    ("english", "Lessons in painting", "lesson paint"),  # stemmed on both stores (SQLite: Porter)
    ("dutch", "Goede praktijken uit het onderwijs", "praktijk"),  # stemmed on PostgreSQL; a start on SQLite
])
def test_search_in_the_configured_language_finds_other_forms_of_a_word(
        store: Callable[[], str | None], tmp_path: Path, language: str, stored: str, asked: str) -> None:
    url = store()
    settings = Settings(data_dir=tmp_path / "n", database_url=url, search_language=language)
    init_node(settings, "https://a.example.org")
    node = Node.open(settings)
    api = Api(node)
    try:
        ann = api.auth("ann")
        api.create(ann, title="Plan", markdown=stored)
        assert titles(search(api, ann, asked)) == ["Plan"]
        if url and language == "dutch":  # PostgreSQL stems Dutch: the other way round too
            api.create(ann, title="Other", markdown="Een praktijk uit Utrecht")
            assert sorted(titles(search(api, ann, "praktijken"))) == ["Other", "Plan"]
    finally:
        api.client.close()
        node.close()


def test_a_search_language_that_is_not_a_configuration_name_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(search_language="dutch'); DROP TABLE documents; --")


def test_the_store_keeps_its_search_language_and_another_one_re_indexes(
        store: Callable[[], str | None], tmp_path: Path) -> None:
    url = store()

    def opened(language: str | None) -> tuple[Node, Api]:
        settings = Settings(data_dir=tmp_path / "n", database_url=url, search_language=language)
        node = Node.open(settings)
        return node, Api(node)

    init_node(Settings(data_dir=tmp_path / "n", database_url=url), "https://a.example.org")
    node, api = opened("english")
    api.create(api.auth("ann"), title="Plan", markdown="Lessons in painting")
    api.client.close()
    node.close()

    node, api = opened(None)  # a process that names no language: the store's
    try:
        assert node.projector.search.language == "english"
        assert titles(search(api, api.auth("ann"), "painted")) == ["Plan"]  # stemmed: paint
    finally:
        api.client.close()
        node.close()
    node, api = opened("simple")  # another one: the index is built again in it
    try:
        assert node.projector.search.language == "simple"
        assert search(api, api.auth("ann"), "painted")["items"] == []  # no stemming now
        assert titles(search(api, api.auth("ann"), "lessons painting")) == ["Plan"]
    finally:
        api.client.close()
        node.close()
