"""Concurrent ordinary edits (``PATCH /items/{gid}``, answered by ``api.fast_paths``): the event loop submits
them to the group commit without a thread each (``Library.edit_item_in_loop``). Every edit is stored once,
answers as a read of the item does, a refused one changes nothing, and no more edits are in flight at once than
the thread pool's limit (both stores)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import anyio.to_thread
import httpx

from tests.api.conftest import Api, is_problem


def test_concurrent_edits_from_the_loop_are_committed_and_answered(api: Api) -> None:
    ann = api.auth("ann")
    items = [api.create(ann, title=f"item {i}") for i in range(12)]
    hidden = api.create(api.auth("bob"), scope="OWNER")
    before = api.outbox()
    committers: set[str] = set()
    groups: list[int] = []
    save_group = api.node.app.group_commit._save

    def watched(batch: list[Any]) -> bool:
        committers.add(threading.current_thread().name)
        groups.append(len(batch))
        return save_group(batch)

    api.node.app.group_commit._save = watched

    async def edit_all() -> list[httpx.Response]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = 4  # as many edits at once as threads
        transport = httpx.ASGITransport(app=api.client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            edits = [client.patch(f"/items/{item['gid']}", json={"markdown": f"edit {i}\n"},
                                  headers={**ann, "If-Match": f'"{item["head"]}"'}) for i, item in enumerate(items)]
            stale = client.patch(f"/items/{items[0]['gid']}", json={"markdown": "late\n"},
                                 headers={**ann, "If-Match": '"00000000-0000-4000-8000-000000000000"'})
            unseen = client.patch(f"/items/{hidden['gid']}", json={"markdown": "mine\n"},
                                  headers={**ann, "If-Match": f'"{hidden["head"]}"'})
            return await asyncio.gather(*edits, stale, unseen)

    *answers, stale, unseen = asyncio.run(edit_all())

    assert [a.status_code for a in answers] == [200] * 12
    for i, (answer, item) in enumerate(zip(answers, items, strict=True)):
        assert answer.json() == api.get(f"/items/{item['gid']}", headers=ann).json()
        assert answer.json()["heads"] == [answer.json()["head"]] and answer.json()["markdown"] == f"edit {i}\n"
    assert is_problem(stale, 409) and is_problem(unseen, 404)
    assert api.outbox() == before + 12
    assert max(groups) <= 4 and sum(groups) >= 12
    assert committers == {"group-commit"}  # committed by the group commit's own thread: no editor thread waited
