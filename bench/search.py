"""Full-text search latency, server side (issue 15): ``GET /search`` over 10,000 items on a real
``fedsync serve``, on each store, in Dutch.

The items (signed by another node and received, as a hub holds them) have a Dutch title, about 1 KB of
Dutch body text drawn from a small vocabulary (so common words match thousands of items and rare ones a
few) and one of 20 tags. Queries: a common word, a rare word, two words, a word's start, a stemmed form
(``praktijken`` stored, ``praktijk`` asked), each --requests times, warm. Prints p50/p99/max per query and
the hits of the first page. Target: under 50 ms p99.

    python bench/search.py [--items 10000] [--requests 30] [--stores sqlite,postgres]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.databases import Databases  # noqa: E402
from bench.merge import summary, timed  # noqa: E402
from infrastructure.local_cluster import NodeProcess  # noqa: E402
from tests.factory import SigningPeer, document  # noqa: E402

TARGET_MS = 50.0
WORDS = ("les", "leerling", "docent", "school", "klas", "rekenen", "taal", "lezen", "schrijven", "museum",
         "excursie", "project", "groep", "opdracht", "toets", "cijfer", "werkblad", "uitleg", "voorbeeld",
         "oefening", "vraag", "antwoord", "thema", "week", "dag", "plan", "doel", "niveau", "aanpak", "materiaal",
         "boek", "verhaal", "spel", "muziek", "tekenen", "natuur", "wereld", "geschiedenis")
QUERIES = (("a common word", "leerling"), ("a rare word", "zeppelin"), ("two words", "museum excursie"),
           ("a word's start", "geschied"), ("a stemmed form", "praktijk"))


def fill(node: NodeProcess, items: int) -> None:
    rng = random.Random(7)
    origin = SigningPeer(host="hub.example.org")
    tags = [origin.create_tag(f"thema {n}") for n in range(20)]
    txs = list(tags)
    for n in range(items):
        body = " ".join(rng.choice(WORDS) for _ in range(150))
        if n % 500 == 0:
            body += " zeppelin"
        if n % 50 == 0:
            body += " goede praktijken"
        tag = tags[n % len(tags)]["entity_gid"]
        txs.append(origin.tx("item", None, "item.created", [], document(f"Les {n}: {rng.choice(WORDS)}", body,
                                                                          [tag])))
    admin = node.admin()
    try:
        admin.keys.pin(origin.name, origin.jwks)
        for i in range(0, len(txs), 500):
            outcomes = admin.app.receive(txs[i:i + 500])
            assert all(o.status == "stored" for o in outcomes), outcomes[:3]
    finally:
        admin.close()


def run(store: str, items: int, requests: int, tmp: Path) -> None:
    dbs = Databases(store)
    node = NodeProcess(data_dir=tmp / store, database_url=dbs.url(), env={"FEDSYNC_SEARCH_LANGUAGE": "dutch"}).init()
    try:
        started = time.perf_counter()
        fill(node, items)
        print(f"{store}: {items} items stored and indexed in {time.perf_counter() - started:.1f} s")
        node.start()
        with httpx.Client(base_url=node.base_url, timeout=60.0,
                          headers={"Authorization": f"Bearer {node.token('bench')}"}) as http:
            for name, q in QUERIES:
                def ask(q: str = q) -> httpx.Response:
                    return http.get("/search", params={"q": q}).raise_for_status()

                timed(ask, 2)  # warm
                times, answer = timed(ask, requests)
                p99 = times[max(0, int(len(times) * 0.99) - 1)]
                verdict = "meets" if p99 < TARGET_MS else "MISSES"
                print(f"    {name:15s} {q!r:20s} x{requests}: {summary(times)}  "
                      f"({len(answer.json()['items'])} hits on page 1) -> {verdict} the {TARGET_MS:.0f} ms target")
    finally:
        node.stop()
        dbs.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--stores", default="sqlite,postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for store in args.stores.split(","):
            run(store, args.items, args.requests, Path(tmp))


if __name__ == "__main__":
    main()
