"""The pages' latency, server side (issue 14): a merge editor's GET of the resolve page, the conflict list,
the item page (rendered text, history DAG), a version diffed against its parent, the edit page and the item
list, for a 10,000-line item with 3 heads, against a real ``fedsync serve``.

The item is the one ``bench/merge.py`` builds (``--history`` signed transactions, then concurrent heads
that change lines near the top, the bottom, a quarter in and the same line in the middle). The page shows
the base and every head side by side, each head's changed lines marked (difflib against the base), and
the proposal in the editor. Prints p50/p99/max of --requests requests per page and the page size.
Target: under 100 ms p99.

    python bench/ui.py [--lines 10000] [--history 50] [--requests 30] [--stores sqlite,postgres]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from bench.databases import Databases  # noqa: E402
from bench.merge import fill, main_of, summary, timed  # noqa: E402
from infrastructure.local_cluster import NodeProcess  # noqa: E402

TARGET_MS = 100.0


def run(store: str, lines: int, transactions: int, requests: int, tmp: Path) -> None:
    dbs = Databases(store)
    node = NodeProcess(data_dir=tmp / store, database_url=dbs.url()).init()
    try:
        started = time.perf_counter()
        gid = fill(node, lines, transactions, heads=3)
        print(f"{store}: a {lines}-line item, {transactions} transactions, 3 heads, stored in "
              f"{time.perf_counter() - started:.1f} s")
        node.start()
        with httpx.Client(base_url=node.base_url, timeout=60.0) as http:
            signed_in = http.post("/ui/sign-in", data={"token": node.token("bench", role="merge")})
            assert signed_in.status_code == 303, signed_in.text  # to the conflict list, with the session cookie
            item = http.get(f"/items/{gid}", headers={"Authorization": f"Bearer {node.token('bench')}"}).json()
            pages = (("resolve page", f"/ui/conflicts/{gid}"), ("conflict list", "/ui/conflicts"),
                     ("item page", f"/ui/items/{gid}"), ("version page", f"/ui/items/{gid}/versions/{item['head']}"),
                     ("edit page", f"/ui/items/{gid}/edit"), ("item list", "/ui/items"))
            for name, path in pages:
                timed(lambda path=path: http.get(path).raise_for_status(), 1)  # warm the aggregate cache
                times, answer = timed(lambda path=path: http.get(path).raise_for_status(), requests)
                p99 = times[max(0, int(len(times) * 0.99) - 1)]
                verdict = "meets" if p99 < TARGET_MS else "MISSES"
                print(f"    {name:14s} x{requests}: {summary(times)}  ({len(answer.content) / 1e6:.2f} MB) "
                      f"-> {verdict} the {TARGET_MS:.0f} ms p99 target")
    finally:
        node.stop()
        dbs.drop()


def main() -> None:
    main_of(run, __doc__, history=50)


if __name__ == "__main__":
    main()
