"""Backups of a node: its config, its keys and a consistent snapshot of its store, taken while it serves.

A backup is a directory (owner only, since it holds the private keys):

- ``config.json`` and ``keys/`` as they are in the data dir;
- the store: ``fedsync.sqlite`` made with SQLite's online backup API (a
  consistent copy while writers go on), or ``store.pgdump`` made by
  ``pg_dump --format=custom`` (one snapshot transaction);
- ``backup.json``: the node, the kind of store, when, the fedsync version
  and how many events the store held.

``restore`` puts them into a data dir that holds no node yet and, for
PostgreSQL, into an empty database (``pg_restore``): the one named, or else
the one the node had (after a loss, created again empty); ``--force``
replaces a node, but only one that no process has open (``serve``, ``sync``:
``infrastructure/data_dir_lock.py``). Everything the node
knows of its federation (peers, cursors, pending transactions, pinned keys)
lives in the store, so a restored node goes on from the cursors it had:
what peers stored since comes again by pull (a duplicate is recognised by
its gid), and its own transactions made after the backup come back from the
peers that received them.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg

from infrastructure.data_dir_lock import DataDirInUse, exclusive
from infrastructure.persistence import StoreUnreachable, check_store, store_name
from infrastructure.settings import CONFIG_FILE, KEYS_DIR, SQLITE_FILE, NodeConfig, Settings

MANIFEST = "backup.json"
PG_DUMP = "store.pgdump"


class BackupError(Exception):
    """A backup or restore that cannot be done, said in one line."""


@dataclass(frozen=True)
class Manifest:
    node: str
    store: str  # sqlite | postgresql
    created_at: str
    version: str
    events: int


def backup(settings: Settings, target: Path, events: int, created_at: str) -> Manifest:
    """Write a backup of the node in ``settings`` to ``target`` (a new or empty directory)."""
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty: a backup goes into a new directory")
    config = NodeConfig.load(settings.data_dir)
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(target, 0o700)
    shutil.copy2(settings.data_dir / CONFIG_FILE, target / CONFIG_FILE)
    shutil.copytree(settings.keys_dir, target / KEYS_DIR)
    if settings.database_url:
        _pg(["pg_dump", "--format=custom", "--no-owner", "--file", str(target / PG_DUMP)], settings.database_url)
        store = "postgresql"
    else:
        source = sqlite3.connect(settings.sqlite_path)
        copy = sqlite3.connect(target / SQLITE_FILE)
        try:
            source.backup(copy)
        finally:
            copy.close()
            source.close()
        store = "sqlite"
    manifest = Manifest(config.name, store, created_at, importlib.metadata.version("fedsync"), events)
    (target / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    return manifest


def restore(source: Path, settings: Settings, *, force: bool = False) -> tuple[Manifest, str | None]:
    """Put a backup into the data dir of ``settings``, which must not hold a node yet, and into its database:
    for a PostgreSQL backup, the one ``settings`` names or else the one the node had (it must be empty).
    Returns the manifest and the database URL the restored node uses."""
    try:
        manifest = Manifest(**json.loads((source / MANIFEST).read_text()))
        config = NodeConfig.load(source)
    except (OSError, ValueError, TypeError) as e:
        raise BackupError(f"{source} is not a fedsync backup ({e})") from None
    if (settings.data_dir / CONFIG_FILE).exists() and not force:
        raise BackupError(f"{settings.data_dir} already holds a node; restore into an empty data dir "
                          "(or pass --force to replace it)")
    database_url = settings.database_url or (config.database_url if manifest.store == "postgresql" else None)
    if (manifest.store == "postgresql") != bool(database_url):
        raise BackupError(f"the backup holds a {manifest.store} store: restore it with "
                          + ("--database-url postgresql://... (an empty database)" if manifest.store == "postgresql"
                             else "no database URL (SQLite in the data dir)"))
    if database_url:
        _refuse_a_database_in_use(database_url)
    try:
        with exclusive(settings.data_dir):  # no process has the node open meanwhile (--force: none had)
            _replace(source, settings, config, database_url)
    except DataDirInUse as e:
        raise BackupError(str(e)) from None
    return manifest, database_url


def _replace(source: Path, settings: Settings, config: NodeConfig, database_url: str | None) -> None:
    if database_url:
        _pg(["pg_restore", "--no-owner", "--exit-on-error", "--single-transaction", str(source / PG_DUMP)],
            database_url, flag="--dbname")
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{settings.sqlite_path}{suffix}").unlink(missing_ok=True)
        shutil.copy2(source / SQLITE_FILE, settings.sqlite_path)
    shutil.rmtree(settings.keys_dir, ignore_errors=True)
    shutil.copytree(source / KEYS_DIR, settings.keys_dir)
    NodeConfig(name=config.name, base_url=config.base_url, database_url=database_url).save(settings.data_dir)


def _refuse_a_database_in_use(database_url: str) -> None:
    """A restore goes into an empty database: never over a node's tables (its own, or another node's)."""
    try:
        check_store(database_url)
        with psycopg.connect(database_url, connect_timeout=5) as conn:
            tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname NOT IN "
                                  "('pg_catalog', 'information_schema')").fetchone()
    except (StoreUnreachable, psycopg.Error) as e:
        raise BackupError(str(e)) from None
    if tables and tables[0]:
        raise BackupError(f"the database {store_name(database_url)} is not empty: restore into an empty database "
                          "(create it, or drop and create the old one) or name one with --database-url")


def _pg(command: list[str], database_url: str, flag: str = "--dbname") -> None:
    """Run a PostgreSQL client tool on the URL's database, the password in the environment, not argv."""
    url = urlsplit(database_url)
    netloc = (unquote(url.username) + "@" if url.username else "") + (url.hostname or "") + \
        (f":{url.port}" if url.port else "")
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = unquote(url.password)
    try:
        result = subprocess.run([*command, f"{flag}={urlunsplit(url._replace(netloc=netloc))}"], env=env,
                                capture_output=True, text=True, timeout=3600)
    except FileNotFoundError:
        raise BackupError(f"{command[0]} is not installed (PostgreSQL's client tools)") from None
    if result.returncode != 0:
        raise BackupError(f"{command[0]} failed: {' '.join(result.stderr.split())[:500]}")
