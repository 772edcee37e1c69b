"""``fedsync doctor``: is this node set up right, and can it reach its peers?

One line per check, ``ok``, ``warn`` or ``FAIL``, and exit code 1 when any
check failed: the config and identity, the store (and how far the read
models lag it), the signing keys (and that only the owner can read them),
and every peer: it answers at its URL, under the name we know it by, and
its clock is within ``CLOCK_SKEW`` of ours (tokens carry times).
"""

from __future__ import annotations

import email.utils
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import httpx
import orjson
import typer
from rich.console import Console

from infrastructure.federation_client import AS_IS, MAX_ANSWER_BYTES, PeerError, read_at_most
from infrastructure.node import Node
from infrastructure.persistence import StoreUnreachable, check_store, store_name
from infrastructure.settings import NodeConfig, Settings

console = Console(soft_wrap=True)
CLOCK_SKEW = 60.0  # seconds
PEER_TIMEOUT = 5.0


class Report:
    def __init__(self) -> None:
        self.failed = False

    def __call__(self, status: str, what: str) -> None:
        self.failed |= status == "FAIL"
        style = {"ok": "green", "warn": "yellow", "FAIL": "red"}[status]
        console.print(f"[{style}]{status:4}[/{style}] {what}", markup=True, highlight=False)


def register(app: typer.Typer, open_node: Callable[[Settings], Node]) -> None:
    @app.command()
    def doctor(
        data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Data dir [env FEDSYNC_DATA_DIR]")] = None,
        database_url: Annotated[str | None, typer.Option("--database-url")] = None,
    ) -> None:
        """Check the config, store, keys and peers (one line each; exit code 1 if a check failed)."""
        report = Report()
        settings = Settings.from_env(data_dir=data_dir, database_url=database_url)
        try:
            config = NodeConfig.load(settings.data_dir)
        except (OSError, ValueError) as e:
            report("FAIL", f"config: {e}")
            raise typer.Exit(1) from None
        report("ok", f"node {config.name} at {config.base_url} (data dir {settings.data_dir.resolve()})")
        try:
            check_store(settings.database_url)
        except StoreUnreachable as e:
            report("FAIL", str(e))
            raise typer.Exit(1) from None
        node = open_node(settings)
        try:
            state = node.readiness()
            report("ok" if state["behind"] <= 1000 else "warn",
                   f"store {store_name(settings.database_url)}: {state['events']} events, read models "
                   f"{state['behind']} behind")
            _keys(report, node, settings)
            for peer in node.peers.all():
                _peer(report, peer.name, peer.base_url)
        finally:
            node.close()
        if report.failed:
            raise typer.Exit(1)


def _keys(report: Report, node: Node, settings: Settings) -> None:
    active = node.keyring.active
    report("ok", f"signing key {active.kid} ({active.alg}), {len(node.keyring.jwks()['keys'])} published")
    loose = [path.name for path in settings.keys_dir.iterdir()
             if path.is_file() and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO)]
    if loose:
        report("FAIL", f"others may read files in {settings.keys_dir}: {', '.join(sorted(loose))} (chmod 600)")


def _peer(report: Report, name: str, base_url: str) -> None:
    url = f"{base_url}/.well-known/fedsync"
    try:  # read as the node reads a peer: at most its bound, never a compressed answer
        with httpx.stream("GET", url, timeout=PEER_TIMEOUT, headers=AS_IS) as answer:
            answer.raise_for_status()
            claimed = orjson.loads(read_at_most(answer, MAX_ANSWER_BYTES, f"GET {url}")).get("name")
    except (httpx.HTTPError, PeerError, ValueError, AttributeError) as e:
        report("FAIL", f"peer {name}: {base_url} does not answer as a fedsync node ({type(e).__name__}: {e})")
        return
    if claimed != name:
        report("FAIL", f"peer {name}: {base_url} now says it is {claimed!r}")
        return
    date = answer.headers.get("date")
    skew = abs(email.utils.parsedate_to_datetime(date).timestamp() - time.time()) if date else None
    if skew is not None and skew > CLOCK_SKEW:
        report("warn", f"peer {name}: its clock is {skew:.0f} s off ours (tokens may be refused)")
        return
    report("ok", f"peer {name} answers at {base_url}" + (f", clock within {skew:.0f} s" if skew is not None else ""))
