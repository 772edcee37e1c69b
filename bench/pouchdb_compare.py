"""PouchDB Server 4.2.0 for ``bench/api.py --compare-pouchdb``: the reference of issue 16.

bench/pouchdb/package.json and its package-lock.json pin pouchdb-server
4.2.0 (LevelDB through leveldown's bundled prebuild: no install scripts
run); install once with ``npm ci --prefix bench/pouchdb`` (Node.js 18+).
node_modules stays out of git.

``pouchdb_server`` starts it on a free port of 127.0.0.1 with a temporary
directory (its databases, config.json and log.txt: nothing lands in the
checkout), logging only warnings, as fedsync serves with --no-access-log,
and creates one database. Its editors do what the issue's reference
measured: a document per item (the item's title and markdown as fields, the
same bodies fedsync gets), each edit a PUT of the whole document with the
``_rev`` the previous answer returned. The process is killed and the
directory removed when the block ends, also on error.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from bench.load import MARKDOWN, Connection, Editor, Server, check, wait_until_up
from infrastructure.local_cluster import free_port

NAME = "PouchDB 4.2.0 (LevelDB)"
PACKAGE = Path(__file__).resolve().parent / "pouchdb"
SERVER = PACKAGE / "node_modules" / "pouchdb-server" / "bin" / "pouchdb-server"
DATABASE = "bench"


def require_installed() -> None:
    """SystemExit in one line unless node and the pinned pouchdb-server are there."""
    if shutil.which("node") is None:
        raise SystemExit("--compare-pouchdb needs Node.js 18+ (`node` is not on PATH)")
    if not SERVER.is_file():
        raise SystemExit(f"--compare-pouchdb: PouchDB Server is not installed; run `npm ci --prefix bench/pouchdb` "
                         f"(looked for {SERVER})")


class PouchEditor(Editor):
    """Documents made with PUT /bench/<id>, edited with PUT and the current ``_rev``: the head is the rev."""

    def create(self, i: int) -> tuple[str, str]:
        key = uuid.uuid4().hex
        status, _, body = self.connection.request("PUT", f"/{DATABASE}/{key}",
                                                  {"title": "item", "markdown": MARKDOWN})
        check(status == 201, "create", status, body)
        return key, json.loads(body)["rev"]

    def update(self, key: str, head: str, markdown: str) -> str:
        status, _, body = self.connection.request("PUT", f"/{DATABASE}/{key}",
                                                  {"_rev": head, "title": "item", "markdown": markdown})
        check(status == 201, "edit", status, body)
        return json.loads(body)["rev"]


@contextlib.contextmanager
def pouchdb_server(client: str) -> Iterator[Server]:
    """Serve PouchDB until the block ends."""
    require_installed()
    directory = Path(tempfile.mkdtemp(prefix="fedsync-bench-pouchdb-"))
    (directory / "db").mkdir()
    (directory / "config.json").write_text(json.dumps({"log": {"level": "warning"}}))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = None
    try:
        with (directory / "out.txt").open("wb") as out:
            process = subprocess.Popen(["node", str(SERVER), "--host", "127.0.0.1", "--port", str(port),
                                        "--dir", str(directory / "db"), "--config", str(directory / "config.json"),
                                        "--no-stdout-logs"],
                                       cwd=directory, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_until_up(f"{url}/", "pouchdb-server")
        except SystemExit:
            raise SystemExit(f"pouchdb-server did not start: {(directory / 'out.txt').read_text()[-500:]}") from None
        connection = Connection(url, None, "http.client")
        try:
            status, _, body = connection.request("PUT", f"/{DATABASE}", {})
            check(status == 201, "PUT /bench", status, body)
        finally:
            connection.close()
        yield Server(lambda items: PouchEditor(Connection(url, None, client), items), process.pid)
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)
