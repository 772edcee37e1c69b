"""The editor's checks of an edit (may they see the item, which share grants it, which tags they cannot see and
so keep): for the ordinary edit read by the group commit's leader with those of the rest of its group
(``Library.read_group_checks``); the same answers as when an edit reads its own (both stores)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import pytest

from infrastructure import visibility
from tests.api.conftest import Api, is_problem


def test_a_bad_reference_in_an_edit_of_an_item_the_editor_may_not_see_is_not_found(api: Api) -> None:
    hidden = api.create(api.auth("ann"), scope="OWNER")
    before = api.outbox()

    edited = api.patch(f"/items/{hidden['gid']}", json={"markdown": f"{{item:{hidden['gid']}:javascript:x}}"},
                       headers={**api.auth("bob"), "If-Match": f'"{hidden["head"]}"'})

    assert is_problem(edited, 404) and api.outbox() == before


def test_a_bad_reference_is_refused_after_a_read_made_off_the_event_loop(api: Api, monkeypatch) -> None:
    """The read that decides between 404 and 422 is a round trip on PostgreSQL: made on the event loop, it held
    every other request of the process for its length (and for the pool's wait when every connection is busy)."""
    on_a_loop: list[bool] = []
    library = api.client.app.state.library
    check_writable = library._check_writable

    def watched(*args: Any, **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
            on_a_loop.append(True)
        except RuntimeError:  # no loop runs in this thread
            on_a_loop.append(False)
        return check_writable(*args, **kwargs)

    monkeypatch.setattr(library, "_check_writable", watched)
    item = api.create(api.auth("ann"))
    before = api.outbox()

    edited = api.patch(f"/items/{item['gid']}", json={"markdown": f"{{item:{item['gid']}:javascript:x}}"},
                       headers={**api.auth("ann"), "If-Match": f'"{item["head"]}"'})

    assert is_problem(edited, 422) and api.outbox() == before
    assert on_a_loop == [False]


def test_an_edit_of_the_tags_keeps_those_the_editor_cannot_see(api: Api) -> None:
    ann, bob = api.auth("ann"), api.auth("bob")
    secret = api.post("/tags", json={"name": "secret", "scope": "OWNER"}, headers=ann).json()
    shown = api.post("/tags", json={"name": "shown"}, headers=ann).json()
    item = api.create(ann, tags=[secret["gid"], shown["gid"]], scope="NETWORK")

    edited = api.patch(f"/items/{item['gid']}", json={"tags": []}, headers={**bob, "If-Match": f'"{item["head"]}"'})

    assert edited.status_code == 200 and edited.json()["tags"] == []  # bob sees none of them now
    assert [t["name"] for t in api.get(f"/items/{item['gid']}", headers=ann).json()["tags"]] == ["secret"]


def test_the_group_commit_reads_the_checks_of_its_edits_at_once(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[tuple[str, int]] = []  # (thread, items) of each visibility read
    visible_documents, app = visibility.visible_documents, api.node.app
    ann = api.auth("ann")
    items = [api.create(ann, title=f"item {i}") for i in range(6)]

    def watched(cur: Any, gids: Any, *args: Any, **kwargs: Any) -> Any:
        gids = list(gids)
        reads.append((threading.current_thread().name, len(gids)))
        return visible_documents(cur, gids, *args, **kwargs)

    def hold_the_first_group() -> None:  # the edits it did not take queue meanwhile, and make the next group
        with app._write_lock:
            for _ in range(500):
                if reads and reads[0][1] + app.group_commit.queued() == len(items):
                    return
                time.sleep(0.01)

    async def edit_all() -> list[httpx.Response]:
        holder = threading.Thread(target=hold_the_first_group)
        holder.start()
        transport = httpx.ASGITransport(app=api.client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers = await asyncio.gather(*[
                client.patch(f"/items/{item['gid']}", json={"markdown": f"edit {i}\n"},
                             headers={**ann, "If-Match": f'"{item["head"]}"'}) for i, item in enumerate(items)])
        holder.join()
        return answers

    monkeypatch.setattr(visibility, "visible_documents", watched)
    answers = asyncio.run(edit_all())

    assert [a.status_code for a in answers] == [200] * 6
    assert {thread for thread, _ in reads} == {"group-commit"}  # read by the leader, before it builds the group
    assert sum(n for _, n in reads) == len(items) and len(reads) <= 2  # a read per group, not per edit
