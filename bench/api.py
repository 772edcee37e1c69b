"""Edits per second through the editor API of a real `fedsync serve` process.

Sets up a node in a temporary data dir (`fedsync init`, `fedsync token
create`), serves it on a free port of 127.0.0.1 (SQLite unless
--database-url), then measures item edits (PATCH with If-Match):

1. sequential: --edits edits over one keep-alive connection, round-robin
   over --items items (each edit names the head the previous one made);
2. concurrent: --clients clients, each with its own keep-alive connection
   and its own items, --edits edits in all.

Prints edits/s, p50/p99 latency and the server's CPU per edit (its
processes' user + system time from /proc, Linux only) for each (with
--rounds N, each round and then the medians). The load generator runs on
the same 2 cores as the server, so it should cost as little as possible:
by default each client is a plain ``http.client`` keep-alive connection
(about 0.15 ms of CPU per request here); ``--client httpx`` uses httpx
instead (about 0.5 ms per request, which shows in the figures).

--compare-pouchdb also starts PouchDB Server 4.2.0 (LevelDB, the reference
of issue 16) and runs the same workload against it in the same run, rounds
interleaved: documents with the item's markdown as a field, each edit a PUT
with the ``_rev`` the previous answer returned (bench/pouchdb_compare.py).
Install it once with ``npm ci --prefix bench/pouchdb`` (Node.js 18+). Usage:

    python bench/api.py [--edits 20000] [--items 100] [--clients 16] [--client http.client|httpx]
                        [--database-url postgresql://...] [--workers N] [--rounds N] [--compare-pouchdb]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import MARKDOWN, Connection, Editor, Server, check, measure, wait_until_up  # noqa: E402
from infrastructure.local_cluster import free_port  # noqa: E402


def fedsync(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "api", *args], env=env, cwd=ROOT, capture_output=True, text=True,
                            timeout=120, check=False)
    if result.returncode != 0:
        raise SystemExit(f"fedsync {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


class FedsyncEditor(Editor):
    """Items made with POST /items, edited with PATCH and If-Match: the head is the ETag."""

    def create(self, i: int) -> tuple[str, str]:
        status, etag, body = self.connection.request("POST", "/items", {"title": f"item {i}", "markdown": MARKDOWN})
        check(status == 201 and etag is not None, "create", status, body)
        return json.loads(body)["gid"], etag

    def update(self, key: str, head: str, markdown: str) -> str:
        status, etag, body = self.connection.request("PATCH", f"/items/{key}", {"markdown": markdown},
                                                     {"If-Match": head})
        check(status == 200 and etag is not None, "edit", status, body)
        return etag


def require_empty(database_url: str) -> None:
    """Refuse a database that already holds tables: a node's earlier items and events would be in the figures."""
    import psycopg

    with psycopg.connect(database_url, connect_timeout=10) as connection:
        tables = connection.execute("SELECT count(*) FROM information_schema.tables "
                                    "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')").fetchone()
    if tables and tables[0]:
        raise SystemExit(f"{database_url} holds {tables[0]} tables: give bench/api.py an empty database "
                         "(CREATE DATABASE ...)")


@contextlib.contextmanager
def fedsync_server(database_url: str | None, workers: int, client: str) -> Iterator[Server]:
    """Serve a new node until the block ends."""
    data_dir = Path(tempfile.mkdtemp(prefix="fedsync-bench-"))
    port = free_port()
    env = dict(os.environ, FEDSYNC_DATA_DIR=str(data_dir), FEDSYNC_HOST="127.0.0.1", FEDSYNC_PORT=str(port))
    env.pop("FEDSYNC_DATABASE_URL", None)
    if database_url:
        require_empty(database_url)
        env["FEDSYNC_DATABASE_URL"] = database_url
    process = None
    try:
        fedsync(env, "init", "--base-url", f"http://127.0.0.1:{port}")
        token = fedsync(env, "token", "create", "bench", "--expires", "1d").strip()
        process = subprocess.Popen([sys.executable, "-m", "api", "serve", "--no-access-log", "--log-level", "warning",
                                    "--workers", str(workers)],
                                   env=env, cwd=ROOT)
        url = f"http://127.0.0.1:{port}"
        wait_until_up(f"{url}/openapi.json", "fedsync serve")
        yield Server(lambda items: FedsyncEditor(Connection(url, token, client), items), process.pid)
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edits", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=100, help="items the edits go round (per run)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--client", choices=["http.client", "httpx"], default="http.client",
                        help="the load generator's HTTP client")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL of an empty database (default SQLite)")
    parser.add_argument("--workers", type=int, default=1, help="serving processes (PostgreSQL only)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds of (sequential, concurrent), then medians (default 1; 3 with --compare-pouchdb)")
    parser.add_argument("--compare-pouchdb", action="store_true",
                        help="also measure PouchDB Server 4.2.0 (npm ci --prefix bench/pouchdb), rounds interleaved")
    args = parser.parse_args()
    if args.edits < args.clients:
        parser.error(f"--edits ({args.edits}) must be at least --clients ({args.clients}): each client makes some")
    rounds = args.rounds or (3 if args.compare_pouchdb else 1)
    # terminated (a CI timeout, kill): end the servers and remove their directories as on any error
    signal.signal(signal.SIGTERM, lambda signum, _: sys.exit(128 + signum))

    with contextlib.ExitStack() as stack:
        if args.compare_pouchdb:
            from bench import pouchdb_compare

            pouchdb_compare.require_installed()  # before anything starts: one line if it is not
        store = "PostgreSQL" if args.database_url else "SQLite"
        sides = {f"fedsync ({store})": stack.enter_context(fedsync_server(args.database_url, args.workers,
                                                                         args.client))}
        print(f"fedsync serve on {store}, {args.workers} process(es), {os.cpu_count()} CPUs; "
              f"markdown {len(MARKDOWN)} bytes per edit; client {args.client}", flush=True)
        if args.compare_pouchdb:
            sides[pouchdb_compare.NAME] = stack.enter_context(pouchdb_compare.pouchdb_server(args.client))
        measure(sides, args.edits, args.items, args.clients, rounds)


if __name__ == "__main__":
    main()
