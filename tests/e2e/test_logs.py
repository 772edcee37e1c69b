"""What a served node writes to its log (issue 13): a start-up line that says what it serves, and federation
failures at WARNING with the peer and the reason, timestamped, as text or as JSON."""

from __future__ import annotations

import json
import re
import time

from infrastructure.local_cluster import NodeProcess
from tests.e2e.conftest import Spawner

TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def full_log(node: NodeProcess) -> str:
    assert node.log_path is not None
    return node.log_path.read_text()


def wait_for(node: NodeProcess, text: str, seconds: float = 30.0) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:  # bounded
        if text in (log := full_log(node)):
            return log
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in the log of {node.name}: {node.log()}")


def peered_with_a_dead_peer(spawn: Spawner, env: dict[str, str]) -> tuple[NodeProcess, NodeProcess]:
    a = spawn("a", start=False, pull_interval=0.5, env=env)
    b = spawn("b")
    admin = a.admin()
    try:
        admin.add_peer(b.base_url, ("item",), ("item",))
    finally:
        admin.close()
    b.stop()
    a.start()
    return a, b


def test_the_start_line_and_a_dead_peer_are_in_the_text_log(spawn: Spawner):
    a, b = peered_with_a_dead_peer(spawn, {})
    log = wait_for(a, f"pull from {b.name} failed")
    start = next(line for line in log.splitlines() if "fedsync.serve" in line)
    assert re.match(TIMESTAMP + r" INFO fedsync\.serve: fedsync \S+: node ", start), start
    assert a.name in start and b.name in start and ("PostgreSQL" in start or "SQLite" in start
                                                    or "postgresql://" in start)
    failure = next(line for line in log.splitlines() if f"pull from {b.name} failed" in line)
    assert re.match(TIMESTAMP + r" WARNING fedsync\.sync: ", failure), failure
    log = wait_for(a, f"breaker for {b.name} is open")  # five failures in a row open it
    assert re.search(TIMESTAMP + rf" WARNING fedsync\.sync: breaker for {re.escape(b.name)} is open", log)


def test_json_logs_are_one_object_per_line_with_the_peer_and_the_reason(spawn: Spawner):
    a, b = peered_with_a_dead_peer(spawn, {"FEDSYNC_LOG_FORMAT": "json"})
    wait_for(a, f"pull from {b.name} failed")
    records = [json.loads(line) for line in full_log(a).splitlines() if line.strip()]  # every line is JSON
    failure = next(r for r in records if r["message"].startswith(f"pull from {b.name} failed"))
    assert failure["level"] == "WARNING" and failure["logger"] == "fedsync.sync"
    assert failure["peer"] == b.name and failure["reason"]
    assert re.fullmatch(TIMESTAMP, failure["time"])
    assert any(r["logger"] == "uvicorn.access" for r in records)  # uvicorn's lines too
