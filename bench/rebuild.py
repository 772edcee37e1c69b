"""Projection rebuild speed: events/s replaying 100,000 transactions.

Builds a store of N received transactions (N/10 items x 10 transactions,
~1 KB markdown) on SQLite and on PostgreSQL, then times
``projector.rebuild()`` (drop every read model, replay the whole store)
several times and prints the median.

    python bench/rebuild.py [--count 100000] [--runs 3] [--stores sqlite,postgres]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from bench.databases import Databases  # noqa: E402
from infrastructure.node import Node, init_node  # noqa: E402
from infrastructure.settings import Settings  # noqa: E402
from tests.factory import SigningPeer as Peer  # noqa: E402
from tests.factory import history


def build(node: Node, count: int) -> float:
    peer = Peer()
    node.keys.pin(peer.name, peer.jwks)
    txs = history(peer, count // 10, 9, markdown_bytes=1000)
    started = time.perf_counter()
    for i in range(0, len(txs), 1000):
        node.app.receive(txs[i:i + 1000])
    return time.perf_counter() - started


def run(store: str, count: int, runs: int) -> None:
    dbs = Databases(store)
    url = dbs.url()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=Path(tmp), database_url=url)
            init_node(settings, "https://bench.example.org")
            node = Node.open(settings)
            load = build(node, count)
            print(f"{store}: stored {count} received transactions in {load:.1f} s "
                  f"({count / load:,.0f} tx/s incl. verify + project)")
            rates = []
            for _ in range(runs):
                started = time.perf_counter()
                replayed = node.projector.rebuild()
                rates.append(replayed / (time.perf_counter() - started))
            print(f"{store}: rebuild of {replayed} events: median {statistics.median(rates):,.0f} events/s "
                  f"(runs: {', '.join(f'{r:,.0f}' for r in rates)})")
            node.close()
    finally:
        dbs.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stores", default="sqlite,postgres")
    args = parser.parse_args()
    for store in args.stores.split(","):
        run(store, args.count, args.runs)


if __name__ == "__main__":
    main()
