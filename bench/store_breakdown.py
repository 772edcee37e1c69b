"""Where receiving a page goes, part by part, in one process (docs/scaling.md, "the store step").

A fresh node receives --count transactions in pages of 1,000, as ``bench/steps.py`` does, with timers
around each part of the path: the checks before the write lock, the domain's work on the aggregates, the
library's save (event encoding included), and inside the insert transaction the commit hooks (gid index,
pending rows, pull cursor), the events insert and the in-commit projection, view by view. On PostgreSQL
the pipeline is synced after each part, so the server's work lands in the part that queued it (a few
round trips more per page). Per transaction: wall time and the receiving thread's CPU; on a local
PostgreSQL also the server processes' CPU for the whole run. Parts nest (indented).

    python bench/store_breakdown.py [--count 20000] [--store postgres|sqlite]
"""

from __future__ import annotations

import argparse
import collections
import functools
import os
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import eventsourcing.application  # noqa: E402
import eventsourcing.persistence  # noqa: E402
import eventsourcing.sqlite  # noqa: E402

import domain.application  # noqa: E402
import domain.receiving  # noqa: E402
from bench.steps import fresh_node, receive_all  # noqa: E402
from infrastructure.persistence import database, postgres  # noqa: E402
from infrastructure.signing import DEFAULT_ALGORITHM, SigningKey  # noqa: E402
from projections import backlinks, conflicts, entity_view, lineage, search, transactions  # noqa: E402
from tests.factory import SigningPeer, history  # noqa: E402

WALL: collections.Counter[str] = collections.Counter()
CPU: collections.Counter[str] = collections.Counter()


def sync_pipeline(args: tuple[Any, ...]) -> None:
    """Sync the psycopg pipeline of the first argument that is (or wraps) a connection's cursor."""
    for arg in args:
        connection = getattr(arg, "connection", None) or getattr(getattr(arg, "raw", None), "connection", None)
        pipeline = getattr(connection, "_pipeline", None)  # psycopg's: None outside pipeline mode
        if pipeline is not None:
            pipeline.sync()
            return


def timed(owner: Any, name: str, part: str) -> None:
    real = getattr(owner, name)

    @functools.wraps(real)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            result = real(*args, **kwargs)
            sync_pipeline(args)
            return result
        finally:
            WALL[part] += time.perf_counter() - wall
            CPU[part] += time.thread_time() - cpu

    setattr(owner, name, wrapper)


PARTS = [
    (domain.receiving, "check", "checks (validate, canonicalise, verify)"),
    (domain.receiving, "triage", "triage"),
    (domain.application.NodeApplication, "_record_received", "record on the aggregates"),
    (eventsourcing.application.Application, "save", "save (library: collect, encode, insert)"),
    (eventsourcing.persistence.Mapper, "to_stored_event", "  encode events (library transcoder)"),
    (database.HookedRecorder, "insert_events", "  insert transaction, whole"),
    (postgres.PostgresRecorder, "_rehearse", "    projection rehearsed before the lock (PostgreSQL)"),
    (database.HookedRecorder, "_write_extras", "    commit hooks (gid index, pending, cursor)"),
    (postgres.PostgresRecorder, "_insert_stored_events", "    events insert"),
    (eventsourcing.sqlite.SQLiteApplicationRecorder, "_insert_events", "    events insert"),
    (postgres.PostgresRecorder, "_replayed", "    rehearsal checked and replayed (PostgreSQL)"),
    (database.HookedRecorder, "_run_in_commit", "    in-commit projection"),
    (entity_view.EntityView, "process", "      entity views"),
    (transactions, "process", "      transactions"),
    (conflicts, "update", "      conflicts"),
    (backlinks, "update", "      backlinks"),
    (lineage, "process", "      lineage"),
    (search.SearchIndex, "update", "      search index"),
]


def server_cpu(url: str | None) -> float:
    """CPU seconds of the local PostgreSQL processes serving ``url``'s database (0 for SQLite)."""
    if url is None:
        return 0.0
    admin, name = url.rsplit("/", 1)
    with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
        pids = [row[0] for row in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,))]
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # another host, or gone
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--store", default="postgres")
    args = parser.parse_args()
    peer = SigningPeer(host="origin.example.org", key=SigningKey.generate(DEFAULT_ALGORITHM))
    txs = history(peer, args.count // 10, 9, markdown_bytes=1000)
    for owner, name, part in PARTS:
        timed(owner, name, part)
    with fresh_node(args.store, peer) as node:
        url = node.settings.database_url
        server = server_cpu(url)
        elapsed = receive_all(node, txs)
        server = server_cpu(url) - server
    per_tx = 1e6 / len(txs)
    print(f"{args.store}: {len(txs)} transactions received in {elapsed * per_tx:.1f} µs/tx"
          + (f"; PostgreSQL's processes used {server * per_tx:.1f} µs of CPU per tx" if url else ""))
    print(f"  {'part':<48} {'wall':>7} {'CPU':>7}  (µs/tx, the receiving thread's CPU)")
    for part in dict.fromkeys(part for _, _, part in PARTS):  # in order, once each
        if part in WALL:
            print(f"  {part:<48} {WALL[part] * per_tx:7.1f} {CPU[part] * per_tx:7.1f}")


if __name__ == "__main__":
    main()
