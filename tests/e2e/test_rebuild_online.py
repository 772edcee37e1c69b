"""``fedsync projections rebuild`` on a node that serves editors meanwhile (issue 13): no write fails or is
lost or doubled, no read of an existing item misses, and the views equal a rebuild from scratch."""

from __future__ import annotations

import os
import subprocess
import threading
import time

import httpx

from infrastructure.local_cluster import NodeProcess
from tests.e2e.conftest import Spawner
from tests.forkserver import fedsync

VIEWS = {"documents": "item_gid", "tags": "tag_gid", "shares": "share_gid", "conflicts": "item_gid",
         "transactions": "gid", "item_references": "item_gid, target_gid", "forks": "item_gid, source_gid"}


def rebuild(node: NodeProcess) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, FEDSYNC_DATA_DIR=str(node.data_dir))
    if node.database_url:
        env["FEDSYNC_DATABASE_URL"] = node.database_url
    return fedsync("projections", "rebuild", env=env, timeout=300)


def views(node: NodeProcess) -> dict[str, list[dict]]:
    return {table: node.query(f"SELECT * FROM {table} ORDER BY {key}") for table, key in VIEWS.items()}


def test_a_rebuild_while_editors_write_and_read_loses_nothing_and_hides_nothing(spawn: Spawner):
    node = spawn("a")
    headers = {"Authorization": f"Bearer {node.token('ann')}"}
    with httpx.Client(base_url=node.base_url, headers=headers, timeout=30) as client:
        existing = []
        for i in range(150):
            created = client.post("/items", json={"title": f"before {i}", "markdown": f"text {i}\n"})
            assert created.status_code == 201, created.text
            existing.append(created.json()["gid"])
        first = existing[0]
        edited = client.patch(f"/items/{first}", json={"parent": client.get(f"/items/{first}").json()["head"],
                                                        "title": "edited"})
        assert edited.status_code == 200, edited.text

    stop = threading.Event()
    writes: list[tuple[int, str | None]] = []
    reads: list[int] = []

    def writer() -> None:
        with httpx.Client(base_url=node.base_url, headers=headers, timeout=30) as client:
            for i in range(5000):  # bounded
                if stop.is_set():
                    return
                response = client.post("/items", json={"title": f"during {i}", "markdown": f"{{item:{first}}}\n"})
                writes.append((response.status_code, response.json().get("gid") if response.is_success else None))

    def reader() -> None:
        with httpx.Client(base_url=node.base_url, headers=headers, timeout=30) as client:
            for i in range(20000):  # bounded
                if stop.is_set():
                    return
                reads.append(client.get(f"/items/{existing[i % len(existing)]}").status_code)

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for thread in threads:
        thread.start()
    try:
        # The rebuild starts once both write and read (a short rebuild could end before a busy machine
        # ran either thread's first request, and then nothing was tried during it).
        for _ in range(300):  # bounded: 30 s
            if writes and reads:
                break
            time.sleep(0.1)
        result = rebuild(node)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "swapped in" in result.stdout
    assert writes and {status for status, _ in writes} == {201}, sorted({s for s, _ in writes})
    assert reads and set(reads) == {200}, sorted(set(reads))
    written = [gid for _, gid in writes]
    documents = {row["item_gid"] for row in node.query("SELECT item_gid FROM documents")}
    assert len(documents) == len(existing) + len(written)  # none lost, none doubled
    assert set(existing) | set(written) == documents
    stored = node.query("SELECT COUNT(*) AS n FROM transactions")[0]["n"]
    assert stored == len(existing) + 1 + len(written)  # one creation each, one edit
    assert node.query("SELECT COUNT(*) AS n FROM item_references")[0]["n"] == len(written)

    live = views(node)
    node.stop()
    again = rebuild(node)  # from scratch, nothing running
    assert again.returncode == 0, again.stdout + again.stderr
    assert views(node) == live
