"""docs/operations.md run as written: each ``fedsync`` command in it, in its order, on a hub that serves and a
platform peered with it, with only the hosts, paths, database and the ids the doc leaves to the reader put in.
Between commands the test does what the doc tells the admin to do by other means (start the service, the
platform's own ``peer add``, lose the machine before a restore). The install and container lines are not run:
CI installs as the README says, and no container engine runs here."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from pathlib import Path

import httpx
import psycopg
import pytest

from infrastructure.local_cluster import NodeProcess, free_port
from tests.conftest import PG_ADMIN_URL
from tests.e2e.conftest import Spawner, peer
from tests.forkserver import fedsync
from tests.reliability.digest import digest

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = [line for block in re.findall(r"```bash\n(.*?)```", (ROOT / "docs" / "operations.md").read_text(), re.S)
            for line in block.splitlines() if line.startswith("fedsync ")]


class Admin:
    """The hub's admin at a terminal: runs the doc's commands against the hub's data dir, nothing else set."""

    def __init__(self, hub: NodeProcess, east: NodeProcess, backups: Path) -> None:
        self.hub, self.east = hub, east
        self.words = {"https://hub.example.org": hub.base_url, "https://east.example.org": east.base_url,
                      "/backups/hub-2026-12-03": str(backups), "/var/lib/fedsync": str(hub.data_dir),
                      "https://hooks.example.org/fedsync": f"http://127.0.0.1:{free_port()}/fedsync"}  # no one there
        self.outputs: dict[str, str] = {}  # the last output of each command, by its first two words as written
        self.ran: list[str] = []

    def run(self, line: str) -> str:
        words = [self.words.get(word, word) for word in shlex.split(line, comments=True)[1:]]
        if "--database-url" in words:  # init's example URL: the test's database, or SQLite without one
            at = words.index("--database-url")
            words[at:at + 2] = ["--database-url", self.hub.database_url] if self.hub.database_url else []
        env = {k: v for k, v in os.environ.items() if not k.startswith("FEDSYNC_")}
        result = fedsync(*words, env={**env, "FEDSYNC_DATA_DIR": str(self.hub.data_dir)}, timeout=300)
        assert result.returncode == 0, f"{line!r} as {words}: {result.stdout}{result.stderr}"
        self.outputs[" ".join(shlex.split(line, comments=True)[1:3])] = result.stdout
        self.ran.append(line)
        return result.stdout


def create_item(node: NodeProcess, title: str) -> None:
    response = httpx.post(f"{node.base_url}/items", json={"title": title, "markdown": "text\n", "scope": "NETWORK"},
                          headers={"Authorization": f"Bearer {node.token('ann')}"}, timeout=30)
    assert response.status_code == 201, response.text


def titles(node: NodeProcess) -> list[str]:
    return sorted(row["title"] for row in node.query("SELECT title FROM documents"))


def wipe(database_url: str | None) -> None:
    """The database is lost too: dropped and created again empty (SQLite's went with the data dir)."""
    if database_url:
        name = database_url.rsplit("/", 1)[1]
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')


@pytest.mark.slow(40)
def test_every_command_of_the_operations_doc_runs_as_written(spawn: Spawner, tmp_path: Path):
    east = spawn("east")
    create_item(east, "made on east")
    hub = NodeProcess(data_dir=tmp_path / "hub", database_url=spawn.store())  # set up by the doc's own init
    spawn.started.append(hub)
    admin = Admin(hub, east, tmp_path / "backup")
    backed_up = None

    for line in COMMANDS:
        command = " ".join(shlex.split(line, comments=True)[1:3])
        if command.startswith("peer add"):  # the service runs (deploy/fedsync.service); east adds the hub
            hub.start()
            peer(east, hub, relay=False)
        if "JTI" in line:
            admin.words["JTI"] = json.loads(admin.outputs["token list"])["tokens"][0]["jti"]
        if line.split()[-1] == "ID":  # the webhook that add made
            admin.words["ID"] = json.loads(admin.outputs["webhook list"])["webhooks"][0]["id"]
        if "KID" in line:  # the key that rotate retired
            keys = json.loads(admin.run("fedsync keys list --json"))["keys"]
            admin.words["KID"] = next(key["kid"] for key in keys if key["status"] == "retired")
        if command.startswith("restore"):  # the machine is lost, and its database
            hub.stop()
            shutil.rmtree(hub.data_dir)
            wipe(hub.database_url)
        output = admin.run(line)
        if command.startswith("backup"):  # taken while the hub serves; nothing changes it until the restore
            backed_up = digest(hub.query)
        if command.startswith("restore"):
            assert digest(hub.query) == backed_up, "the restored node is the node that was backed up"
            hub.start()
        if command == "sync":
            assert titles(hub).count("made on east") == 1, output  # pulled once, and once only after the restore

    assert set(admin.ran) >= set(COMMANDS) and len(COMMANDS) >= 15
    assert "FAIL" not in admin.outputs["doctor"]
    assert [p["name"] for p in json.loads(admin.outputs["peer list"])["peers"]] == [east.name]
    assert json.loads(admin.run("fedsync webhook list --json")) == {"webhooks": []}  # the remove as written
    tokens = json.loads(admin.run("fedsync token list --all --json"))["tokens"]
    assert [token["status"] for token in tokens] == ["revoked"]  # the revoke as written revoked it
    keys = json.loads(admin.run("fedsync keys list --json"))["keys"]
    assert sorted(key["status"] for key in keys) == ["active", "revoked"]
