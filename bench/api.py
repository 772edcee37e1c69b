"""Edits per second through the editor API of a real `fedsync serve` process.

Sets up a node in a temporary data dir (`fedsync init`, `fedsync token
create`), serves it on a free port of 127.0.0.1 (SQLite unless
--database-url), then measures item edits (PATCH with If-Match):

1. sequential: --edits edits over one keep-alive connection, round-robin
   over --items items (each edit names the head the previous one made);
2. concurrent: --clients clients, each with its own keep-alive connection
   and its own items, --edits edits in all.

Prints edits/s and p50/p99 latency for each. The load generator runs on
the same 2 cores as the server, so it should cost as little as possible:
by default each client is a plain ``http.client`` keep-alive connection
(about 0.15 ms of CPU per request here); ``--client httpx`` uses httpx
instead (about 0.5 ms per request, which shows in the figures). Usage:

    python bench/api.py [--edits 20000] [--items 100] [--clients 16] [--client http.client|httpx]
                        [--database-url postgresql://...] [--workers N]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from infrastructure.local_cluster import free_port

ROOT = Path(__file__).resolve().parent.parent
MARKDOWN = "# Lesson plan\n\n" + "Some text of a lesson, a line of about sixty characters.\n" * 8


def fedsync(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "api", *args], env=env, cwd=ROOT, capture_output=True, text=True,
                            timeout=120, check=False)
    if result.returncode != 0:
        raise SystemExit(f"fedsync {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


class Connection:
    """One keep-alive connection: ``request`` returns (status, ETag, body)."""

    def __init__(self, url: str, token: str, client: str) -> None:
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        if client == "httpx":
            self.http: httpx.Client | None = httpx.Client(base_url=url, headers=self.headers, timeout=30.0)
        else:
            self.http = None
            host, port = url.removeprefix("http://").split(":")
            self.plain = http.client.HTTPConnection(host, int(port), timeout=30.0)

    def request(self, method: str, path: str, body: dict, headers: dict[str, str] | None = None,
                ) -> tuple[int, str | None, bytes]:
        if self.http is not None:
            response = self.http.request(method, path, json=body, headers=headers)
            return response.status_code, response.headers.get("ETag"), response.content
        self.plain.request(method, path, body=json.dumps(body).encode(), headers={**self.headers, **(headers or {})})
        reply = self.plain.getresponse()
        return reply.status, reply.getheader("ETag"), reply.read()

    def close(self) -> None:
        if self.http is not None:
            self.http.close()
        else:
            self.plain.close()


class Editor:
    """One client: a keep-alive connection and the heads of its items."""

    def __init__(self, url: str, token: str, items: int, client: str) -> None:
        self.connection = Connection(url, token, client)
        self.heads: dict[str, str] = {}
        for i in range(items):
            status, etag, body = self.connection.request("POST", "/items",
                                                         {"title": f"item {i}", "markdown": MARKDOWN})
            if status != 201 or etag is None:
                raise RuntimeError(f"create failed: {status} {body[:300]!r}")
            self.heads[json.loads(body)["gid"]] = etag
        self.latencies: list[float] = []

    def edit(self, count: int) -> None:
        gids = list(self.heads)
        for n in range(count):  # bounded
            gid = gids[n % len(gids)]
            started = time.perf_counter()
            status, etag, body = self.connection.request("PATCH", f"/items/{gid}",
                                                         {"markdown": f"{MARKDOWN}\nedit {n}\n"},
                                                         {"If-Match": self.heads[gid]})
            self.latencies.append(time.perf_counter() - started)
            if status != 200 or etag is None:
                raise RuntimeError(f"edit failed: {status} {body[:300]!r}")
            self.heads[gid] = etag

    def close(self) -> None:
        self.connection.close()


def report(label: str, latencies: list[float], elapsed: float) -> None:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    print(f"{label:<34} {len(ordered):>6} edits  {len(ordered) / elapsed:>7.0f} edits/s  "
          f"p50 {p50:6.2f} ms  p99 {p99:6.2f} ms", flush=True)


def sequential(url: str, token: str, edits: int, items: int, client: str) -> None:
    editor = Editor(url, token, items, client)
    try:
        started = time.perf_counter()
        editor.edit(edits)
        report(f"sequential, 1 connection, {items} items", editor.latencies, time.perf_counter() - started)
    finally:
        editor.close()


def concurrent(url: str, token: str, edits: int, items: int, clients: int, client: str) -> None:
    editors = [Editor(url, token, max(1, items // clients), client) for _ in range(clients)]
    share = edits // clients
    errors: list[BaseException] = []

    def run(editor: Editor) -> None:
        try:
            editor.edit(share)
        except BaseException as e:  # reported below, after every thread ended
            errors.append(e)

    threads = [threading.Thread(target=run, args=(editor,)) for editor in editors]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for editor in editors:
        editor.close()
    if errors:
        raise errors[0]
    report(f"concurrent, {clients} clients", [x for e in editors for x in e.latencies], elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edits", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=100, help="items the edits go round (per run)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--client", choices=["http.client", "httpx"], default="http.client",
                        help="the load generator's HTTP client")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL of an empty database (default SQLite)")
    parser.add_argument("--workers", type=int, default=1, help="serving processes (PostgreSQL only)")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="fedsync-bench-"))
    port = free_port()
    env = dict(os.environ, FEDSYNC_DATA_DIR=str(data_dir), FEDSYNC_HOST="127.0.0.1", FEDSYNC_PORT=str(port))
    env.pop("FEDSYNC_DATABASE_URL", None)
    if args.database_url:
        env["FEDSYNC_DATABASE_URL"] = args.database_url
    process = None
    try:
        fedsync(env, "init", "--base-url", f"http://127.0.0.1:{port}")
        token = fedsync(env, "token", "create", "bench", "--expires", "1d").strip()
        process = subprocess.Popen([sys.executable, "-m", "api", "serve", "--no-access-log", "--log-level", "warning",
                                    "--workers", str(args.workers)],
                                   env=env, cwd=ROOT)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # bounded readiness wait
            try:
                if httpx.get(f"{url}/openapi.json", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise SystemExit("fedsync serve did not start")
        store = "PostgreSQL" if args.database_url else "SQLite"
        print(f"fedsync serve on {store}, {args.workers} process(es), {os.cpu_count()} CPUs; "
              f"markdown {len(MARKDOWN)} bytes per edit; client {args.client}")
        sequential(url, token, args.edits, args.items, args.client)
        concurrent(url, token, args.edits, args.items, args.clients, args.client)
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
