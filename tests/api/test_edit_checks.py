"""The editor's checks of an edit (may they see the item, which share grants it, which tags they cannot see and
so keep): on SQLite read by the group commit's leader just before it builds the edit, on PostgreSQL in the
editor's thread (``Library.edit_item``); the same answers either way (both stores)."""

from __future__ import annotations

from typing import Any

import pytest

from infrastructure import visibility
from tests.api.conftest import Api, is_problem


def test_a_bad_reference_in_an_edit_of_an_item_the_editor_may_not_see_is_not_found(api: Api) -> None:
    hidden = api.create(api.auth("ann"), scope="OWNER")
    before = api.outbox()

    edited = api.patch(f"/items/{hidden['gid']}", json={"markdown": f"{{item:{hidden['gid']}:javascript:x}}"},
                       headers={**api.auth("bob"), "If-Match": f'"{hidden["head"]}"'})

    assert is_problem(edited, 404) and api.outbox() == before


def test_an_edit_of_the_tags_keeps_those_the_editor_cannot_see(api: Api) -> None:
    ann, bob = api.auth("ann"), api.auth("bob")
    secret = api.post("/tags", json={"name": "secret", "scope": "OWNER"}, headers=ann).json()
    shown = api.post("/tags", json={"name": "shown"}, headers=ann).json()
    item = api.create(ann, tags=[secret["gid"], shown["gid"]], scope="NETWORK")

    edited = api.patch(f"/items/{item['gid']}", json={"tags": []}, headers={**bob, "If-Match": f'"{item["head"]}"'})

    assert edited.status_code == 200 and edited.json()["tags"] == []  # bob sees none of them now
    assert [t["name"] for t in api.get(f"/items/{item['gid']}", headers=ann).json()["tags"]] == ["secret"]


def test_on_sqlite_the_leader_reads_the_checks_under_the_write_lock(api: Api, monkeypatch: pytest.MonkeyPatch
                                                                    ) -> None:
    held: list[bool] = []
    visible_item = visibility.visible_item
    lock: Any = api.node.app._write_lock

    def watched(*args: Any, **kwargs: Any) -> Any:
        held.append(lock._is_owned())
        return visible_item(*args, **kwargs)

    ann = api.auth("ann")
    item = api.create(ann)
    monkeypatch.setattr(visibility, "visible_item", watched)

    edited = api.patch(f"/items/{item['gid']}", json={"markdown": "two\n"},
                       headers={**ann, "If-Match": f'"{item["head"]}"'})

    assert edited.status_code == 200
    assert held == [api.node.db.in_process]  # SQLite: in the group commit; PostgreSQL: in the editor's thread
