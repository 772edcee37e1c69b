"""Catch-up over HTTP: an empty node pulls a large history from another.

A (a real ``fedsync serve``) holds N signed transactions (N/10 items x 10,
~1 KB markdown, signed by a third node with the default algorithm, so B
also learns keys through A). B, empty, runs ``fedsync sync`` in its own
process: verify + store + project, page by page. Prints transactions/s end
to end and B's peak memory (max RSS of the sync process, and of its check
worker process), for several N to show that memory stays flat. Then, with
B serving and subscribed to A, measures push propagation: an edit through
A's REST API until B's projection shows it (on PostgreSQL woken by B's
commit notification, on SQLite polled every ~1 ms), p50/p99 over M edits.

    python bench/catchup.py [--counts 25000,50000,100000] [--edits 1000] [--stores sqlite,postgres]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import psycopg  # noqa: E402

from bench.databases import Databases  # noqa: E402
from infrastructure.local_cluster import NodeProcess  # noqa: E402
from infrastructure.signing import DEFAULT_ALGORITHM, SigningKey  # noqa: E402
from tests.factory import SigningPeer as Peer  # noqa: E402
from tests.factory import history

# `fedsync sync <peer>` in its own process, then its peak RSS (KiB) and its check worker's on stderr. VmHWM, not
# getrusage's ru_maxrss: the latter survives execve, so it would report this (big) parent's peak for the sync,
# and for a spawned worker the sync's own RSS when it forked (94 MiB, whatever the worker then used). The
# worker's VmHWM is read from /proc while it runs (every 0.2 s; it has exited when the sync returns).
SYNC_AND_REPORT_RSS = """
import os, sys, threading, time
from api.cli import app
peer = sys.argv[1]
sys.argv = ["fedsync", "sync", peer]
peaks = {}

def hwm(pid):
    with open(f"/proc/{pid}/status") as status:
        return int([line for line in status if line.startswith("VmHWM")][0].split()[1])

def watch():
    me = os.getpid()
    while True:  # a daemon thread: ends with the process
        for task in os.listdir(f"/proc/{me}/task"):
            try:
                with open(f"/proc/{me}/task/{task}/children") as children:
                    for pid in children.read().split():
                        peaks[pid] = max(peaks.get(pid, 0), hwm(pid))
            except (OSError, IndexError):
                pass
        time.sleep(0.2)

threading.Thread(target=watch, daemon=True).start()
try:
    app()
except SystemExit as e:
    if e.code:
        raise
print("maxrss", hwm(os.getpid()), max(peaks.values(), default=0), file=sys.stderr)
"""

def fill(a: NodeProcess, count: int) -> None:
    source = Peer(host="origin.example.org", key=SigningKey.generate(DEFAULT_ALGORITHM))
    txs = history(source, count // 10, 9, markdown_bytes=1000)
    admin = a.admin()
    try:
        admin.keys.pin(source.name, source.jwks)
        for i in range(0, len(txs), 1000):
            admin.app.receive(txs[i:i + 1000])
    finally:
        admin.close()


def peer_both(a: NodeProcess, b: NodeProcess) -> None:
    for x, y in ((a, b), (b, a)):
        admin = x.admin()
        try:
            admin.add_peer(y.base_url, ("item", "tag", "share"), ("item", "tag", "share"), name=y.name, relay=True)
        finally:
            admin.close()


def catch_up(store: str, count: int, tmp: Path) -> None:
    dbs = Databases(store)
    a = NodeProcess(data_dir=tmp / f"{store}-a{count}", database_url=dbs.url()).init()
    b = NodeProcess(data_dir=tmp / f"{store}-b{count}", database_url=dbs.url()).init()
    try:
        fill(a, count)
        a.start()
        b.start()
        peer_both(a, b)
        b.stop()  # B's pull runs in its own `fedsync sync` process
        env = dict(os.environ, FEDSYNC_DATA_DIR=str(b.data_dir))
        if b.database_url:
            env["FEDSYNC_DATABASE_URL"] = b.database_url
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", SYNC_AND_REPORT_RSS, a.name], env=env, capture_output=True,
                              text=True, timeout=3600)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(done.stdout + done.stderr)
        peak_kib, worker_kib = (int(kib) for kib in done.stderr.strip().splitlines()[-1].split()[-2:])
        stored = b.query("SELECT COUNT(*) AS n FROM transactions")[0]["n"]
        if stored < count:
            print(f"{store}: B stored only {stored} of {count}; the sync said:\n{done.stdout}{done.stderr}")
        print(f"{store}: {count:>7} tx: B stored {stored} in {elapsed:.1f} s = {stored / elapsed:,.0f} tx/s "
              f"end to end; B peak RSS {peak_kib / 1024:.0f} MiB (its check worker {worker_kib / 1024:.0f} MiB)")
    finally:
        a.stop()
        b.stop()
        dbs.drop()


def propagation(store: str, edits: int, tmp: Path) -> None:
    dbs = Databases(store)
    a = NodeProcess(data_dir=tmp / f"{store}-pa", database_url=dbs.url()).init().start()
    b = NodeProcess(data_dir=tmp / f"{store}-pb", database_url=dbs.url()).init().start()
    try:
        peer_both(a, b)
        admin_b = b.admin()
        admin_b.subscribe_to(a.name)
        token = subprocess.run([sys.executable, "-m", "api", "token", "create", "bench"], capture_output=True,
                               text=True, env=dict(os.environ, FEDSYNC_DATA_DIR=str(a.data_dir),
                                                   **({"FEDSYNC_DATABASE_URL": a.database_url}
                                                      if a.database_url else {})),
                               check=True).stdout.strip().splitlines()[-1]
        http = httpx.Client(base_url=a.base_url, headers={"Authorization": f"Bearer {token}"})
        item = http.post("/items", json={"title": "latency", "markdown": "0\n", "scope": "NETWORK"}).json()
        head = item["head"]

        def arrived() -> bool:
            with admin_b.db.read() as cur:
                row = cur.execute("SELECT head FROM documents WHERE item_gid = ?", (item["gid"],)).fetchone()
            return bool(row and row["head"] == head)

        # On PostgreSQL B's commit NOTIFYs fedsync_saved (infrastructure/duties.py): wait for that instead of
        # polling, whose ~1 ms period (and its reads on 2 shared cores) added ~1-2 ms to each figure.
        listener = psycopg.connect(b.database_url, autocommit=True) if b.database_url else None
        if listener is not None:
            listener.execute("LISTEN fedsync_saved")
        latencies = []
        for i in range(edits):
            started = time.perf_counter()
            response = http.patch(f"/items/{item['gid']}", json={"markdown": f"{i}\n"},
                                  headers={"If-Match": f'"{head}"'})
            response.raise_for_status()
            head = response.json()["head"]
            for _ in range(20_000):  # bounded wait for B's projection
                if arrived():
                    break
                if listener is not None:
                    for _notice in listener.notifies(timeout=0.05, stop_after=1):
                        pass
                else:
                    time.sleep(0.001)
            latencies.append(time.perf_counter() - started)
        latencies.sort()
        p50 = statistics.median(latencies) * 1000
        p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
        how = "B's NOTIFY" if listener is not None else "a 1 ms poll"
        print(f"{store}: push propagation over {edits} edits: p50 {p50:.1f} ms, p99 {p99:.1f} ms (seen by {how})")
        if listener is not None:
            listener.close()
        admin_b.close()
    finally:
        a.stop()
        b.stop()
        dbs.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="25000,50000,100000")
    parser.add_argument("--edits", type=int, default=1000)
    parser.add_argument("--stores", default="sqlite,postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for store in args.stores.split(","):
            for count in (int(c) for c in args.counts.split(",") if c):
                catch_up(store, count, Path(tmp))
            if args.edits:
                propagation(store, args.edits, Path(tmp))


if __name__ == "__main__":
    main()
