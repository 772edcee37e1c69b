"""Catch-up, code against code: one filled node A, and per round a fresh empty B for each checkout.

The machine's speed drifts by tens of percent within an hour, so compare two versions of the code in
one run, interleaved: A (this checkout's ``fedsync serve``) is filled once with N signed transactions;
then, round after round, for each checkout given, a fresh B (a ``fedsync sync`` run with that checkout's
code, as its working directory) pulls all of them. Prints each run and the median per checkout.

    git worktree add /tmp/before <commit>
    python bench/catchup_ab.py --count 20000 --store sqlite --rounds 3 /tmp/before .
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

from bench.catchup import SYNC_AND_REPORT_RSS, fill, peer_both  # noqa: E402
from bench.databases import Databases  # noqa: E402
from infrastructure.local_cluster import NodeProcess  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("checkouts", nargs="+", type=Path, help="directories holding the code to compare")
    args = parser.parse_args()
    checkouts = [c.resolve() for c in args.checkouts]
    rates: dict[Path, list[float]] = {c: [] for c in checkouts}
    dbs = Databases(args.store)
    with tempfile.TemporaryDirectory() as tmp:
        a = NodeProcess(data_dir=Path(tmp) / "a", database_url=dbs.url()).init()
        try:
            fill(a, args.count)
            a.start()
            for run in range(args.rounds):
                for checkout in checkouts:
                    b = NodeProcess(data_dir=Path(tmp) / f"b{run}-{len(rates[checkout])}-{checkout.name}",
                                    database_url=dbs.url()).init().start()
                    peer_both(a, b)
                    b.stop()
                    env = dict(os.environ, FEDSYNC_DATA_DIR=str(b.data_dir), PYTHONPATH=str(checkout))
                    if b.database_url:
                        env["FEDSYNC_DATABASE_URL"] = b.database_url
                    started = time.perf_counter()
                    done = subprocess.run([sys.executable, "-c", SYNC_AND_REPORT_RSS, a.name], env=env, cwd=checkout,
                                          capture_output=True, text=True, timeout=3600)
                    elapsed = time.perf_counter() - started
                    if done.returncode != 0:
                        raise RuntimeError(done.stdout + done.stderr)
                    stored = b.query("SELECT COUNT(*) AS n FROM transactions")[0]["n"]
                    if stored != args.count:
                        raise RuntimeError(f"{checkout}: B stored {stored} of {args.count}")
                    rates[checkout].append(args.count / elapsed)
                    print(f"{checkout}: {elapsed:.2f} s, {args.count / elapsed:,.0f} tx/s", flush=True)
        finally:
            a.stop()
            dbs.drop()
    for checkout, runs in rates.items():
        print(f"{checkout}: median {statistics.median(runs):,.0f} tx/s of {', '.join(f'{r:,.0f}' for r in runs)}")


if __name__ == "__main__":
    main()
