"""Editors' event streams (``GET /events``) on real ``fedsync serve`` processes, on both stores: a merge
editor hears of a conflict within a second of the second head arriving; the item's creator hears that
another node edited it; a team hears of an item shared with it; an editor hears nothing meant for others;
a stream resumes after ``Last-Event-ID``."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from infrastructure.local_cluster import NodeProcess
from tests.e2e.conftest import Spawner, link
from tests.e2e.test_conflicts_e2e import editor, ok

Event = tuple[float, str, str, dict[str, Any]]  # (arrived, id, kind, notice)


@contextmanager
def listening(node: NodeProcess, name: str, last_event_id: str | None = None, **token: Any) -> Iterator[queue.Queue]:
    """The events of ``name``'s stream on ``node``, as they arrive, until the block ends. Like a browser's
    EventSource, the reader reconnects with ``Last-Event-ID`` when the stream goes quiet (here after 1 s, so
    that the block can end without waiting for the server)."""
    arrived: queue.Queue[Event] = queue.Queue()
    authorization = {"Authorization": f"Bearer {node.token(name, **token)}"}
    opened, stop = threading.Event(), threading.Event()

    def read() -> None:
        last = last_event_id
        with httpx.Client(base_url=node.base_url, timeout=httpx.Timeout(10.0, read=1.0)) as client:
            for _ in range(600):  # bounded: reconnects
                if stop.is_set():
                    return
                headers = {**authorization, **({"Last-Event-ID": last} if last else {})}
                try:
                    with client.stream("GET", "/events", headers=headers) as response:
                        assert response.status_code == 200
                        assert response.headers["content-type"].startswith("text/event-stream")
                        fields: dict[str, str] = {}
                        for line in response.iter_lines():
                            if line == ": connected":
                                opened.set()
                            elif line.startswith(("id: ", "event: ", "data: ")):
                                key, _, value = line.partition(": ")
                                fields[key] = value
                            elif line == "":  # as an EventSource: a block's id is kept, with data or not
                                last = fields.get("id", last)
                                if "data" in fields:
                                    arrived.put((time.monotonic(), last, fields["event"], json.loads(fields["data"])))
                                fields = {}
                except httpx.ReadTimeout:
                    continue  # quiet: reconnect after the last event

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert opened.wait(10), "the stream did not open"
    try:
        yield arrived
    finally:
        stop.set()
        reader.join(5)


def next_of(arrived: queue.Queue, kind: str, timeout: float = 10.0) -> Event:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # bounded
        try:
            event = arrived.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        if event[2] == kind:
            return event
    raise AssertionError(f"no {kind} event within {timeout} s")


def sync(node: NodeProcess, source: NodeProcess) -> None:
    """Pull from ``source`` inside the serving process (the admin API), as ``Sync now`` does."""
    with editor(node, "root", role="admin") as admin:
        ok(admin.post(f"/admin/peers/{source.name}/sync"))


@pytest.mark.slow(20)
def test_conflicts_edits_and_shares_reach_the_streams_of_those_they_concern(spawn: Spawner) -> None:
    a, b = spawn.many("a", "b")
    link(a, b)
    with editor(a, "ann") as ann:
        item = ok(ann.post("/items", json={"title": "Plan", "markdown": "one\n"}), 201)
    sync(b, a)

    with listening(a, "mia", role="merge") as mia, listening(a, "ann") as ann_events, \
            listening(a, "tia", team="maths") as tia, listening(a, "ed") as ed:
        head = {"If-Match": f'"{item["head"]}"'}
        with editor(a, "ann") as ann, editor(b, "bo") as bo:
            ok(ann.patch(f"/items/{item['gid']}", headers=head, json={"markdown": "one\nann\n"}))
            ok(bo.patch(f"/items/{item['gid']}", headers=head, json={"markdown": "one\nbo\n"}))
            theirs = ok(bo.post("/items", json={"title": "Their notes", "markdown": "x\n", "scope": "OWNER"}), 201)
            ok(bo.post(f"/items/{theirs['gid']}/shares", json={"peer": a.name, "permission": "read",
                                                                "team": "maths"}), 201)
        sync(a, b)
        second_head = time.monotonic()

        arrived, _, _, conflict = next_of(mia, "conflict.opened")
        assert conflict["item"] == item["gid"] and len(conflict["heads"]) == 2
        assert arrived - second_head < 1.0
        _, edited_id, _, edited = next_of(ann_events, "item.edited")
        assert (edited["item"], edited["origin"]) == (item["gid"], b.name)
        _, _, _, shared = next_of(tia, "item.shared")
        assert (shared["item"], shared["team"]) == (theirs["gid"], "maths")
        time.sleep(1.5)  # what ed might have been sent meanwhile: nothing (not a merge editor, not the creator)
        assert ed.empty() and ann_events.empty() and tia.empty()

    with editor(b, "bo") as bo:
        current = ok(bo.get(f"/items/{item['gid']}"))
        ok(bo.patch(f"/items/{item['gid']}", headers={"If-Match": f'"{current["head"]}"'}, json={"title": "Plan B"}))
    sync(a, b)
    with listening(a, "ann", last_event_id=edited_id) as resumed:  # resumes after the event it had
        _, _, _, later = next_of(resumed, "item.edited")
        assert later["title"] == "Plan B" and later["transaction"] != edited["transaction"]


@pytest.mark.slow(10)
def test_a_stream_needs_a_good_token_and_a_short_last_event_id(spawn: Spawner) -> None:
    """The requests the API fuzzer leaves out (a good one never ends): a missing or forged token is a 401
    problem, an over-long ``Last-Event-ID`` a 422, and one that is not a position starts the stream now."""
    (a,) = spawn.many("a")
    with httpx.Client(base_url=a.base_url, timeout=10) as client:
        for headers in ({}, {"Authorization": "Bearer not-a-token"}):
            refused = client.get("/events", headers=headers)
            assert refused.status_code == 401
            assert refused.headers["content-type"] == "application/problem+json"
        too_long = client.get("/events", headers={"Authorization": f"Bearer {a.token('ann')}",
                                                  "Last-Event-ID": "9" * 41})
        assert too_long.status_code == 422 and too_long.headers["content-type"] == "application/problem+json"
    with listening(a, "ann", last_event_id="not-a-position"):
        pass  # listening asserts a 200 text/event-stream that opened
