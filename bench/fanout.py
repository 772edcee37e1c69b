"""Hub fan-out: one edit on a hub reaches --subscribers subscribers; latency to each and the hub's memory.

A hub (`fedsync serve`, SQLite unless --database-url) has --subscribers peers subscribed to it. They are
lightweight receivers: one process (this script with --receiver) answers every subscriber's inbox,
``http://127.0.0.1:<port>/s<i>/federation/inbox``, and notes when each transaction reached which
subscriber. Then an editor makes --edits edits on the hub, one at a time; for each, the time from the
edit's answer to its arrival at each subscriber is taken. Prints p50/p99/max of those latencies and the
hub's peak RSS (VmHWM) before and after.

    python bench/fanout.py [--subscribers 200] [--edits 20] [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ARRIVALS: list[tuple[int, str, float]] = []  # (subscriber, gid, when) in the receiver process


async def receiver(scope, receive, send) -> None:  # noqa: ANN001 - a bare ASGI app
    if scope["type"] != "http":
        return
    body, more = b"", True
    while more:  # bounded by the client's body
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    path = scope["path"]
    if scope["method"] == "POST" and path.endswith("/federation/inbox"):
        now = time.time()
        subscriber = int(path.split("/")[1][1:])
        txs = orjson.loads(body)["transactions"]
        ARRIVALS.extend((subscriber, tx["gid"], now) for tx in txs)
        answer = orjson.dumps({"results": [{"gid": tx["gid"], "status": "stored"} for tx in txs]})
    else:
        answer = orjson.dumps(ARRIVALS)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": answer})


def wait_until(check, what: str, timeout: float = 60.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # bounded
        if check():
            return
        time.sleep(0.05)
    raise SystemExit(f"{what}: not within {timeout} s")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL of an empty database (default SQLite)")
    parser.add_argument("--receiver", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receiver is not None:
        import uvicorn
        uvicorn.run(receiver, host="127.0.0.1", port=args.receiver, log_level="warning", access_log=False)
        return

    from domain.transaction import ENTITY_TYPES
    from infrastructure.local_cluster import NodeProcess, free_port
    from infrastructure.peers import Peer

    data_dir = Path(tempfile.mkdtemp(prefix="fedsync-fanout-"))
    port = free_port()
    inboxes = subprocess.Popen([sys.executable, __file__, "--receiver", str(port)], cwd=ROOT)
    hub = NodeProcess(data_dir=data_dir / "hub", database_url=args.database_url).init()
    try:
        admin = hub.admin()
        try:
            for i in range(args.subscribers):
                name = f"urn:domain:s{i}.example.org"
                admin.peers.add(Peer(name, f"http://127.0.0.1:{port}/s{i}", ENTITY_TYPES, ENTITY_TYPES))
                admin.peers.subscribe(name)
        finally:
            admin.close()
        hub.start()
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/arrivals").status_code == 200, "receiver")
        rss_before = peak_rss_mib(hub.process.pid)
        token = hub.token("editor")
        sent: dict[str, float] = {}
        with httpx.Client(base_url=hub.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
            for i in range(args.edits):  # one at a time: each edit's fan-out is measured alone
                answer = api.post("/items", json={"title": f"edit {i}", "markdown": "fan me out\n"})
                answer.raise_for_status()
                gid = answer.json()["head"]
                sent[gid] = time.time()

                def arrived(gid: str = gid) -> bool:
                    got = orjson.loads(httpx.get(f"http://127.0.0.1:{port}/arrivals", timeout=30).content)
                    return sum(1 for _, g, _ in got if g == gid) >= args.subscribers

                wait_until(arrived, f"edit {i} at every subscriber")
        arrivals = orjson.loads(httpx.get(f"http://127.0.0.1:{port}/arrivals", timeout=30).content)
        latencies = sorted((when - sent[gid]) * 1000 for _, gid, when in arrivals if gid in sent)
        per_gid = {gid: sum(1 for _, g, _ in arrivals if g == gid) for gid in sent}
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        store = "PostgreSQL" if args.database_url else "SQLite"
        print(f"hub on {store}, {args.subscribers} subscribers, {args.edits} edits one at a time, "
              f"{os.cpu_count()} CPUs")
        print(f"  deliveries {len(latencies)} (each edit to each subscriber: "
              f"{'once' if set(per_gid.values()) == {args.subscribers} else per_gid})")
        print(f"  edit -> subscriber latency: p50 {statistics.median(latencies):.0f} ms, p99 {p99:.0f} ms, "
              f"max {latencies[-1]:.0f} ms (target p99 < 2,000 ms)")
        print(f"  hub peak RSS: {rss_before:.0f} MiB before the edits, {peak_rss_mib(hub.process.pid):.0f} MiB "
              "after (target < 300 MiB)")
    finally:
        hub.stop()
        inboxes.terminate()
        inboxes.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
