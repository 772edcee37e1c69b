"""The ``fedsync`` command line: what an admin runs on a node."""

from __future__ import annotations

import importlib.metadata
import json
import os
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from api import cli_backup, cli_doctor, cli_federation, cli_requests, cli_tokens, cli_webhooks, serving_processes
from api.cli_output import UserError, opened, report
from api.logs import configure_logging
from domain.errors import DomainError
from domain.transaction import normal_timestamp, utc_now
from infrastructure.node import Node, init_node
from infrastructure.persistence import StoreUnreachable, check_store, postgres_url, store_name
from infrastructure.settings import InvalidConfig, Settings
from infrastructure.signing import ALGORITHMS, DEFAULT_ALGORITHM, Keyring

app = typer.Typer(help="fedsync: a federated content-sync node.", no_args_is_help=True)


def _version(show: bool) -> None:
    if show:
        print(f"fedsync {importlib.metadata.version('fedsync')}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit")] = False) -> None:
    """fedsync: a federated content-sync node."""
keys_app = typer.Typer(help="The node's signing keys.", no_args_is_help=True)
projections_app = typer.Typer(help="Read models (projections).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(projections_app, name="projections")
console = Console()

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data dir [env FEDSYNC_DATA_DIR, default ./data]")]
DatabaseUrl = Annotated[str | None, typer.Option(
    "--database-url", help="postgresql://... [env FEDSYNC_DATABASE_URL, default SQLite in the data dir]")]
BaseUrl = Annotated[str | None, typer.Option(
    help="The URL peers reach this node at; its host names the node [default: kept, or http://127.0.0.1:8000]")]
Algorithm = Annotated[str, typer.Option(help=f"Signing algorithm for a new key: {', '.join(ALGORITHMS)}")]
KeyFile = Annotated[Path | None, typer.Option(
    help="Use this PEM private key (Ed25519, P-256 or RSA, e.g. from 'openssl genrsa 4096')")]
NodeHost = Annotated[str | None, typer.Option(
    help="Host that names the node (urn:domain:<host>); default: the base URL's")]


def settings_from(data_dir: Path | None, database_url: str | None = None, **overrides: object) -> Settings:
    return Settings.from_env(data_dir=data_dir, database_url=database_url, **overrides)


def open_node(settings: Settings) -> Node:
    try:
        check_store(settings.database_url)
        node = Node.open(settings)
    except FileNotFoundError as e:
        report(str(e))
        raise typer.Exit(2) from None
    opened(node.name, store_name(settings.database_url) if settings.database_url else str(settings.sqlite_path))
    return node


@app.command()
def init(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    base_url: BaseUrl = None,
    alg: Algorithm = DEFAULT_ALGORITHM,
    key: KeyFile = None,
    name: NodeHost = None,
    force: Annotated[bool, typer.Option(help="Change the name, base URL, store or key of an existing node")] = False,
) -> None:
    """Create the data dir, the node config (name, base URL, database URL) and the signing key.

    Run again, it keeps what it is not told to change, and refuses to change the node's identity or store
    without --force."""
    if alg not in ALGORITHMS:
        raise UserError(f"unknown algorithm {alg!r}; choose one of {', '.join(ALGORITHMS)}")
    settings = settings_from(data_dir, database_url)
    try:
        pem = key.read_bytes() if key else None
        config = init_node(settings, base_url, alg=alg, key_pem=pem, host=name, force=force,
                           before_write=lambda: check_store(settings.database_url))
    except (OSError, ValueError, StoreUnreachable) as e:
        raise UserError(str(e)) from None
    node = open_node(settings)  # creates the store's tables
    node.close()
    keyring = Keyring.load(settings.keys_dir)
    console.print(f"node [bold]{config.name}[/bold] at {config.base_url}")
    store = "PostgreSQL" if settings.database_url else "SQLite"
    console.print(f"data dir {settings.data_dir.resolve()}, store {store}")
    console.print(f"signing key {keyring.active.kid} ({keyring.active.alg})")


@keys_app.command("rotate")
def rotate_keys(
    data_dir: DataDir = None,
    alg: Annotated[str | None, typer.Option(help="Algorithm of the new key (default: same as now)")] = None,
) -> None:
    """Add a new signing key; the old one stays published for verification. Signs every editor out."""
    settings = settings_from(data_dir)
    keyring = Keyring.load(settings.keys_dir)
    old = keyring.active
    new = keyring.rotate(alg)
    console.print(f"active key {new.kid} ({new.alg}); {old.kid} retired, still published for the transactions "
                  "it signed. Every editor token it signed is refused from now on: issue new ones "
                  "(fedsync token create).")


@keys_app.command("import")
def import_key(
    key: Annotated[Path, typer.Argument(help="A PEM private key (Ed25519, P-256 or RSA)")],
    data_dir: DataDir = None,
) -> None:
    """Make KEY the active signing key; the current one is retired but stays published for verification."""
    settings = settings_from(data_dir)
    try:
        keyring = Keyring.import_pem(settings.keys_dir, key.read_bytes())
    except (OSError, ValueError) as e:
        raise UserError(str(e)) from None
    console.print(f"active key {keyring.active.kid} ({keyring.active.alg})")


@keys_app.command("list")
def list_keys(
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="The JWKS the node publishes, as JSON")] = False,
) -> None:
    """Show the node's keys (the JWKS it publishes)."""
    settings = settings_from(data_dir)
    jwks = Keyring.load(settings.keys_dir).jwks()
    if as_json:
        typer.echo(json.dumps(jwks, indent=2))
        return
    for jwk in jwks["keys"]:
        console.print(f"{jwk['kid']}  {jwk['alg']}  {jwk['status']}")


# A kid is base64url, so one in 64 starts with "-": read such a word as the kid, not as an option.
@keys_app.command("revoke", context_settings={"ignore_unknown_options": True})
def revoke_key(
    kid: Annotated[str, typer.Argument(help="The key's kid (fedsync keys list)")],
    compromised_since: Annotated[str | None, typer.Option(
        help="Refuse what the key signed from this time on (RFC 3339 UTC, e.g. 2026-12-01T00:00:00Z); "
             "default: now")] = None,
    data_dir: DataDir = None,
) -> None:
    """Revoke a key: peers refuse what it signed from then on (an active key is rotated out first)."""
    settings = settings_from(data_dir)
    keyring = Keyring.load(settings.keys_dir)
    try:
        since = normal_timestamp(compromised_since or utc_now())
        active = keyring.revoke(kid, since)
    except ValueError as e:
        raise UserError(str(e)) from None
    console.print(f"{kid} revoked for everything created since {since}; active key {active.kid}. "
                  "Peers refuse what it signs from their next key refresh on.")


@keys_app.command("disputes")
def key_disputes(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Origins for which relays vouch different keys (none of those keys is used until you trust one)."""
    with closing(open_node(settings_from(data_dir, database_url))) as node:
        disputes = node.keys.disputes()
        for dispute in disputes:
            if dispute.trusted:
                console.print(f"{dispute.origin}  trusted: {', '.join(dispute.trusted)}")
            for relay, kids in dispute.vouched.items():
                console.print(f"{dispute.origin}  {relay} vouches {', '.join(kids)}")
        if not disputes:
            console.print("no disputes")


@keys_app.command("trust")
def trust_keys(
    origin: str,
    relay: Annotated[str, typer.Option(help="The relay whose keys for ORIGIN are right")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Settle a dispute: take RELAY's keys for ORIGIN (and forget every relay's vouches for it)."""
    with closing(open_node(settings_from(data_dir, database_url))) as node:
        try:
            kids = node.keys.trust(origin, relay)
        except ValueError as e:
            raise UserError(str(e)) from None
    console.print(f"{origin}: trusting {', '.join(kids)} (from {relay})")


@projections_app.command("rebuild")
def rebuild_projections(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Rebuild every read model from the events, beside the live ones, and swap them in at once.

    Safe while the node serves: readers see the old views until the swap, writers wait only for it."""
    settings = settings_from(data_dir, database_url)
    with closing(open_node(settings)) as node:
        total = node.app.recorder.max_notification_id() or 0
        started = time.perf_counter()
        with Progress(TextColumn("rebuilding"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=console) as bar:
            task = bar.add_task("events", total=total)
            report = node.rebuild_views(progress=lambda n: bar.advance(task, n))
        elapsed = time.perf_counter() - started
        count = report.built + report.caught_up
        rate = count / elapsed if elapsed else 0.0
        console.print(f"replayed {count} events in {elapsed:.2f} s ({rate:,.0f} events/s): {report.built} "
                      f"into new views, {report.caught_up} stored meanwhile; swapped in at event {report.position}")


@app.command()
def serve(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    host: Annotated[str | None, typer.Option(help="Listen address [env FEDSYNC_HOST, default 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port [env FEDSYNC_PORT, default 8000]")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
    access_log: Annotated[bool, typer.Option(help="Log every request")] = True,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Serving processes (PostgreSQL only); "
                                         "one of them runs push, pull, key refresh and webhooks")] = 1,
) -> None:
    """Serve the editor API (OpenAPI at /docs) and the federation protocol."""
    import uvicorn

    from api.app import create_app

    settings = settings_from(data_dir, database_url, host=host, port=port)
    if workers > 1 and not postgres_url(settings.database_url):
        raise UserError(f"--workers {workers}: a SQLite store is served by one process; several need PostgreSQL "
                        "(FEDSYNC_DATABASE_URL or --database-url)")
    open_node(settings).close()  # a clear message when the data dir was not initialised
    configure_logging(log_level)
    options = {"host": settings.host, "port": settings.port, "log_level": log_level, "access_log": access_log,
               "log_config": None, "timeout_graceful_shutdown": 3}  # a stop cuts event streams after 3 s
    if workers == 1:
        uvicorn.run(create_app(settings), workers=1, **options)
        return
    # Each worker process builds its app from the environment (uvicorn imports the factory there).
    os.environ.update(FEDSYNC_DATA_DIR=str(settings.data_dir), FEDSYNC_DATABASE_URL=str(settings.database_url),
                      FEDSYNC_LOG_LEVEL=log_level, FEDSYNC_ACCESS_LOG="1" if access_log else "0")
    try:
        code = serving_processes.serve({**options, "app": "api.app:app_from_env", "factory": True}, workers)
    except OSError as error:
        raise UserError(f"cannot listen on {settings.host}:{settings.port}: {error.strerror or error}") from error
    raise typer.Exit(code)


def _open_node_of(data_dir: str | None, database_url: str | None = None) -> Node:
    return open_node(settings_from(Path(data_dir) if data_dir else None, database_url))


cli_federation.register(app, _open_node_of)
cli_requests.register(app, _open_node_of)
cli_tokens.register(app, _open_node_of)
cli_webhooks.register(app, _open_node_of)
cli_backup.register(app, open_node)
cli_doctor.register(app, open_node)


def main() -> None:
    """The console script: a user error (an unknown peer, token or key, a refused change) is one line on
    stderr and exit code 1, not a traceback."""
    configure_logging("warning")  # commands print their results; the log says only what went wrong
    try:
        app()
    except (UserError, DomainError, FileNotFoundError, StoreUnreachable, InvalidConfig) as e:
        report(str(e))
        sys.exit(1)
