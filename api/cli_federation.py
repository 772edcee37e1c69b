"""``fedsync peer ...`` and ``fedsync sync``: peering and pulling from the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import closing
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.cli_output import UserError, print_table, report
from api.demo import run_demo
from api.responses import peer_statuses_of
from domain.transaction import ENTITY_TYPES
from infrastructure.federation_client import PeerError
from infrastructure.node import Node
from infrastructure.peers import entity_types

peer_app = typer.Typer(help="Peers: the nodes this node syncs with.", no_args_is_help=True)
console = Console()

Types = Annotated[str, typer.Option(help="Entity types, comma separated (item,tag,share); '' for none")]
EVERY_TYPE = ",".join(ENTITY_TYPES)
PEER_HELP = "The peer: urn:domain:east.example.org, east.example.org or its base URL"
PeerName = Annotated[str, typer.Argument(help=PEER_HELP)]
DataDir = Annotated[str | None, typer.Option("--data-dir")]


def peer_named(node: Node, given: str) -> str:
    """The name of the peer the admin means: its node name, or short, its host (``east.example.org``) or its
    base URL (``https://east.example.org``)."""
    peers = node.peers.all()
    for peer in peers:
        if given in (peer.name, peer.name.removeprefix("urn:domain:"), peer.base_url, peer.base_url + "/"):
            return peer.name
    known = ", ".join(peer.name for peer in peers) or "none yet"
    raise UserError(f"no peer {given} (peers: {known})")


def register(app: typer.Typer, open_node: Callable[[str | None], Node]) -> None:
    """Add the federation commands to the main CLI (``open_node`` opens the node of a ``--data-dir``)."""

    @peer_app.command("add")
    def add_peer(
        base_url: str,
        send: Types = EVERY_TYPE,
        accept: Types = EVERY_TYPE,
        subscribe: Annotated[bool, typer.Option(help="Ask the peer to push to us")] = False,
        tags: Annotated[str, typer.Option(
            help="With --subscribe: only items with one of these tags (names, comma-separated), pushed and pulled")
        ] = "",
        name: Annotated[str | None, typer.Option(
            help="The peer's node name, when it is not urn:domain:<the URL's host>")] = None,
        relay: Annotated[bool, typer.Option(
            help="A hub: take its word on the keys of nodes we do not peer with")] = False,
        data_dir: DataDir = None,
    ) -> None:
        """Peer with the node at BASE_URL: pin its keys, store what we send and accept."""
        wanted = [tag.strip() for tag in tags.split(",") if tag.strip()]
        if wanted and not subscribe:  # before anything is stored
            raise UserError("--tags filters a subscription: give --subscribe too")
        with closing(open_node(data_dir)) as node:
            try:
                peer = node.add_peer(base_url, entity_types(send), entity_types(accept), name=name, relay=relay)
            except (PeerError, ValueError) as e:  # one line, never markup: the URL is the admin's, not ours
                raise UserError(f"cannot peer with {base_url}: {e}") from None
            console.print(f"peered with [bold]{peer.name}[/bold] at {peer.base_url} "
                          f"(send {','.join(peer.send_types) or 'nothing'}, "
                          f"accept {','.join(peer.accept_types) or 'nothing'})")
            if subscribe:
                try:
                    node.subscribe_to(peer.name, wanted)
                except (PeerError, ValueError) as e:  # the peering stays: say so, and how to ask again
                    raise UserError(f"peered with {peer.name}, but the subscription failed: {e}; once the peer "
                                    f"knows this node, run the same command again") from None
                console.print(f"subscribed: {peer.name} pushes to us"
                              + (f" the items tagged {', '.join(wanted)}" if wanted else ""))

    @peer_app.command("list")
    def list_peers(
        data_dir: DataDir = None,
        as_json: Annotated[bool, typer.Option("--json", help="JSON ({\"peers\": [...]}, as GET /admin/peers)")] = False,
    ) -> None:
        """Each peer with its lag, last acknowledged entry, last success/error, queue and breaker."""
        with closing(open_node(data_dir)) as node:
            if as_json:
                typer.echo(json.dumps({"peers": [peer.model_dump() for peer in peer_statuses_of(node)]}, indent=2))
                return
            table = Table("peer", "send", "accept", "queue", "last ack", "last success", "last error", "breaker",
                          "relay")
            for peer in peer_statuses_of(node):
                relay = ("yes" if peer.relay else "-") + "".join(f"; disputed keys of {origin}"
                                                                  for origin in peer.key_disputes)
                table.add_row(peer.name, ",".join(peer.send), ",".join(peer.accept), str(peer.queue_depth),
                              str(peer.last_acknowledged_seq), str(peer.last_success or "-"),
                              escape(str(peer.last_error or "-")[:60]), peer.breaker, relay)  # a peer's words
            print_table(console, table)

    @peer_app.command("remove")
    def remove_peer(name: PeerName, data_dir: DataDir = None) -> None:
        """Forget a peer (its pinned keys stay, so its transactions keep verifying)."""
        with closing(open_node(data_dir)) as node:
            name = peer_named(node, name)
            node.peers.remove(name)
            console.print(f"removed {name}")

    @peer_app.command("retry")
    def retry_peer(name: PeerName, data_dir: DataDir = None) -> None:
        """Close the peer's breaker and forget its backoff: the workers try again at once."""
        with closing(open_node(data_dir)) as node:
            name = peer_named(node, name)
            node.peers.retry_now(name)
            console.print(f"{name}: retry now")

    @app.command()
    def sync(
        peer: Annotated[str | None, typer.Argument(help=PEER_HELP + " (default: every peer we accept from)")] = None,
        data_dir: DataDir = None,
    ) -> None:
        """Pull now from one or all peers (exit code 1 if any pull failed)."""
        failed = []
        with closing(open_node(data_dir)) as node:
            names = [peer_named(node, peer)] if peer else [p.name for p in node.peers.all() if p.accept_types]
            for name in names:
                with Progress(TextColumn(f"pulling from {name}"), BarColumn(), TextColumn("{task.completed} tx"),
                              TimeElapsedColumn(), console=console) as bar:
                    task = bar.add_task("pull", total=None)
                    try:
                        result = node.syncer.pull(name, progress=lambda n, task=task: bar.advance(task, n))
                    except PeerError as e:
                        report(f"{name}: {e}")
                        failed.append(name)
                        continue
                console.print(f"{name}: {result.received} received, {result.stored} stored, "
                              f"{result.pending} pending, {result.refused} refused"
                              + (" (gap fill)" if result.gap_filled else ""))
        if failed:
            raise typer.Exit(1)

    @app.command()
    def demo() -> None:
        """Start three local nodes (two platforms and a hub), sync them and resolve a conflict."""
        run_demo()

    app.add_typer(peer_app, name="peer")
