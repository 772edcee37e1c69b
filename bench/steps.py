"""What each step of receiving a transaction costs, per transaction, in one process (docs/scaling.md).

A peer signs --count transactions (--count/10 items x 10, ~1 KB markdown, the node's default algorithm
unless --alg); a fresh node on each store receives them in pages of 1,000. Timed apart, on the same
transactions: validation, canonicalisation (the signing input), signature verification (one thread),
receiving a page whole (check, triage, record, store, project, in one commit per page), projecting
alone (a rebuild of the read models), and what a hub does per subscriber and transaction when it
pushes (scan the outbox for what that subscriber may see, and encode the batch). "store" is derived:
receive minus check minus project. Each figure is the median of --runs runs.

    python bench/steps.py [--count 20000] [--runs 3] [--stores sqlite,postgres] [--alg RS256|ES256|EdDSA]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.databases import Databases  # noqa: E402
from domain.transaction import (  # noqa: E402
    ENTITY_TYPES,  # noqa: E402
    signing_input,
    validate,
)
from infrastructure.node import Node, init_node  # noqa: E402
from infrastructure.peers import Peer  # noqa: E402
from infrastructure.settings import Settings  # noqa: E402
from infrastructure.signing import DEFAULT_ALGORITHM, KeySet, SigningKey  # noqa: E402
from tests.factory import SigningPeer, history  # noqa: E402

PAGE = 1000


def per_tx(action: Callable[[], object], count: int, runs: int) -> float:
    """Microseconds per transaction of ``action`` (which handles ``count`` of them), median of ``runs``."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times) / count * 1e6


def in_memory(txs: list[dict], peer: SigningPeer, runs: int) -> dict[str, float]:
    keys = KeySet.from_jwks(peer.jwks)
    signed = [(tx, signing_input(tx)) for tx in txs]
    return {
        "validate": per_tx(lambda: [validate(tx) for tx in txs], len(txs), runs),
        "canonicalise": per_tx(lambda: [signing_input(tx) for tx in txs], len(txs), runs),
        "verify (1 thread)": per_tx(lambda: [keys.verify(tx["signature"], data) for tx, data in signed],
                                    len(txs), runs),
    }


@contextmanager
def fresh_node(store: str, peer: SigningPeer) -> Iterator[Node]:
    """A node on a new, empty store (a scratch database on PostgreSQL) that trusts ``peer``."""
    dbs = Databases(store)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=Path(tmp), database_url=dbs.url(), verify_workers=1)
            init_node(settings, "https://hub.example.org")
            node = Node.open(settings)
            try:
                node.keys.pin(peer.name, peer.jwks)
                yield node
            finally:
                node.close()
    finally:
        dbs.drop()


def receive_all(node: Node, txs: list[dict]) -> float:
    """Seconds to receive ``txs`` in pages of PAGE."""
    started = time.perf_counter()
    for i in range(0, len(txs), PAGE):
        node.app.receive(txs[i:i + PAGE])
    return time.perf_counter() - started


def on_store(store: str, txs: list[dict], peer: SigningPeer, runs: int) -> dict[str, float]:
    receive, project, push = [], [], []
    for _ in range(runs):
        with fresh_node(store, peer) as node:
            receive.append(receive_all(node, txs))
            started = time.perf_counter()
            node.projector.rebuild()
            project.append(time.perf_counter() - started)
            subscriber = "urn:domain:subscriber.example.org"
            node.peers.add(Peer(subscriber, "https://subscriber.example.org", ENTITY_TYPES, ENTITY_TYPES))
            outbox = node.syncer.outbox
            audience = outbox.audience(subscriber)
            started, sent, after = time.perf_counter(), 0, 0
            while sent < len(txs):  # bounded: each scan moves on by a page
                scan = outbox.scan(audience, after, max_count=PAGE, max_bytes=8 << 20)
                if scan.last <= after:
                    break
                orjson.dumps([e.tx for e in scan.entries])
                sent, after = sent + len(scan.entries), scan.last
            push.append(time.perf_counter() - started)
    count = len(txs)
    return {"receive, whole": statistics.median(receive) / count * 1e6,
            "project (rebuild)": statistics.median(project) / count * 1e6,
            "push, per subscriber (scan + encode)": statistics.median(push) / count * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--alg", default=DEFAULT_ALGORITHM)
    args = parser.parse_args()
    peer = SigningPeer(host="origin.example.org", key=SigningKey.generate(args.alg))
    txs = history(peer, args.count // 10, 9, markdown_bytes=1000)
    print(f"{len(txs)} transactions of ~1 KB markdown signed {args.alg}; microseconds per transaction, "
          f"median of {args.runs} runs")
    steps = in_memory(txs, peer, args.runs)
    check = sum(steps.values())
    for name, value in steps.items():
        print(f"  {name:<40} {value:8.1f}")
    for store in args.stores.split(","):
        figures = on_store(store, txs, peer, args.runs)
        store_only = figures["receive, whole"] - check - figures["project (rebuild)"]
        print(f"{store}:")
        for name, value in figures.items():
            print(f"  {name:<40} {value:8.1f}")
        print(f"  {'store (derived: receive - check - project)':<40} {store_only:8.1f}")
        print(f"  -> one process receives {1e6 / figures['receive, whole']:,.0f} tx/s; a hub pushes "
              f"{1e6 / figures['push, per subscriber (scan + encode)']:,.0f} tx/s to one subscriber per core")


if __name__ == "__main__":
    main()
