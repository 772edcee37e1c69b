"""Backup, wipe, restore, sync (issue 13): the restored node is the node that was backed up, and a sync with
its peer brings what it missed, once."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from infrastructure.local_cluster import NodeProcess
from tests.e2e.conftest import Spawner
from tests.forkserver import fedsync as run_cli
from tests.reliability.digest import digest


def fedsync(node: NodeProcess, *args: str, database_url: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDSYNC_")}
    env["FEDSYNC_DATA_DIR"] = str(node.data_dir)
    if database_url or node.database_url:
        env["FEDSYNC_DATABASE_URL"] = database_url or node.database_url or ""
    result = run_cli(*args, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def create_items(node: NodeProcess, count: int, prefix: str) -> None:
    headers = {"Authorization": f"Bearer {node.token('ann')}"}
    with httpx.Client(base_url=node.base_url, headers=headers, timeout=30) as client:
        for i in range(count):
            response = client.post("/items", json={"title": f"{prefix} {i}", "markdown": "text\n",
                                                   "scope": "NETWORK"})
            assert response.status_code == 201, response.text


def gids(node: NodeProcess) -> list[str]:
    return sorted(row["gid"] for row in node.query("SELECT gid FROM transactions"))


@pytest.mark.slow
def test_backup_wipe_restore_and_sync_give_back_the_same_node_without_duplicates(spawn: Spawner, tmp_path: Path):
    a, b = spawn.many("a", "b")
    for one, other in ((a, b), (b, a)):
        admin = one.admin()
        try:
            admin.add_peer(other.base_url, ("item",), ("item",))
        finally:
            admin.close()
    create_items(a, 20, "a")
    create_items(b, 20, "b")
    fedsync(a, "sync")
    create_items(a, 5, "a while serving")
    backup_dir = tmp_path / "backup"

    assert "45 events" in fedsync(a, "backup", str(backup_dir))  # while a serves
    before, backed_up = digest(a.query), gids(a)
    create_items(b, 7, "b after the backup")
    a.stop()

    shutil.rmtree(a.data_dir)  # the machine is lost
    new_url = spawn.store(empty=True)  # an empty database (None: SQLite in the data dir)
    restored = NodeProcess(data_dir=a.data_dir, database_url=new_url, host=a.host, port=a.port)
    out = fedsync(restored, "restore", str(backup_dir), "--data-dir", str(a.data_dir),
                  *(["--database-url", new_url] if new_url else []))
    assert "restored" in out and "45 events" in out
    assert digest(restored.query) == before  # the very node that was backed up
    assert (backup_dir / "keys").stat().st_mode & 0o077 == 0 or backup_dir.stat().st_mode & 0o077 == 0

    restored.start()
    spawn.started.append(restored)
    fedsync(restored, "sync")
    assert set(gids(restored)) == set(backed_up) | set(gids(b))  # what b made after the backup came
    assert len(gids(restored)) == len(set(gids(restored))) == 52  # and nothing twice
    fedsync(restored, "sync")  # again: nothing new
    assert len(gids(restored)) == 52


def test_restore_refuses_a_data_dir_that_holds_a_node_and_a_directory_that_is_not_a_backup(spawn: Spawner,
                                                                                            tmp_path: Path):
    a = spawn("a", start=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDSYNC_")}
    for args in (["restore", str(tmp_path), "--data-dir", str(a.data_dir)],
                 ["backup", str(a.data_dir), "--data-dir", str(a.data_dir)]):  # not empty
        result = run_cli(*args, env=env, timeout=120)
        assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_restore_without_a_database_url_goes_where_the_node_was_and_never_over_a_database_in_use(
        spawn: Spawner, tmp_path: Path):
    a = spawn("a", start=False)
    fedsync(a, "backup", str(tmp_path / "backup"))
    before = digest(a.query)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDSYNC_")}

    result = run_cli("restore", str(tmp_path / "backup"), "--data-dir", str(tmp_path / "elsewhere"), env=env,
                     timeout=120)

    if a.database_url:  # the database the node had, which still holds it: refused, nothing touched
        assert result.returncode == 1 and "is not empty" in result.stderr, result.stdout + result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "elsewhere" / "config.json").exists()
    else:  # SQLite: the store goes into the new data dir
        assert result.returncode == 0, result.stderr
        restored = NodeProcess(data_dir=tmp_path / "elsewhere", port=a.port)
        assert digest(restored.query) == before
    assert digest(a.query) == before


def test_restore_force_refuses_a_node_that_is_open_and_replaces_it_once_stopped(spawn: Spawner, tmp_path: Path):
    a = spawn("a")
    create_items(a, 3, "backed up")
    fedsync(a, "backup", str(tmp_path / "backup"))
    backed_up = digest(a.query)
    create_items(a, 2, "after the backup")
    before = digest(a.query)
    new_url = spawn.store(empty=True)  # PostgreSQL: restore into an empty database (None: SQLite in the data dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDSYNC_")}
    restore = ["restore", str(tmp_path / "backup"), "--force", "--data-dir", str(a.data_dir),
               *(["--database-url", new_url] if new_url else [])]

    refused = run_cli(*restore, env=env, timeout=120)

    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert refused.stderr.strip() == f"fedsync: the node in {a.data_dir} is open in another process (fedsync " \
        "serve, sync or another command): stop it first", refused.stderr
    assert digest(a.query) == before  # nothing replaced under the serving node, which goes on
    assert httpx.get(f"{a.base_url}/items", headers={"Authorization": f"Bearer {a.token('ann')}"}).status_code == 200

    a.stop()
    restored = run_cli(*restore, env=env, timeout=120)

    assert restored.returncode == 0, restored.stdout + restored.stderr
    again = NodeProcess(data_dir=a.data_dir, database_url=new_url, host=a.host, port=a.port)
    assert digest(again.query) == backed_up
