"""``fedsync webhook``: add, list and remove the outgoing webhooks (infrastructure/webhooks.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import closing
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from api.cli_output import UserError, print_table
from domain.errors import EntityNotFound
from infrastructure.node import Node
from infrastructure.notices import KINDS

webhook_app = typer.Typer(help="Outgoing webhooks: where notices are POSTed, signed.", no_args_is_help=True)
console = Console()
DataDirOption = Annotated[str | None, typer.Option("--data-dir", help="Data dir [env FEDSYNC_DATA_DIR]")]
DatabaseUrlOption = Annotated[str | None, typer.Option(
    "--database-url", help="postgresql://... [env FEDSYNC_DATABASE_URL, default SQLite in the data dir]")]


def register(app: typer.Typer, open_node: Callable[[str | None, str | None], Node]) -> None:
    """Add ``fedsync webhook ...`` to the main CLI (``open_node`` opens the node of a data dir and store)."""

    @webhook_app.command("add")
    def add_webhook(
        url: Annotated[str, typer.Argument(help="Where to POST the notices: http(s)://host[:port]/path")],
        events: Annotated[str, typer.Option(help="Notice kinds, comma separated")] = ",".join(KINDS),
        data_dir: DataDirOption = None,
        database_url: DatabaseUrlOption = None,
    ) -> None:
        """Register a webhook, told what happens from now on; prints its id and its secret (shown this once)."""
        with closing(open_node(data_dir, database_url)) as node:
            try:
                webhook = node.webhooks.add(url, events)
            except ValueError as e:
                raise UserError(str(e)) from None
        console.print(f"webhook {webhook.id}: {escape(webhook.url)} ({', '.join(webhook.events)})")
        console.print(f"secret {webhook.secret}", markup=False, highlight=False, soft_wrap=True)
        console.print("the receiver checks X-Fedsync-Signature with it; it is not shown again")

    @webhook_app.command("list")
    def list_webhooks(
        as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False,
        data_dir: DataDirOption = None,
        database_url: DatabaseUrlOption = None,
    ) -> None:
        """The webhooks and how their deliveries went (never their secrets)."""
        with closing(open_node(data_dir, database_url)) as node:
            statuses = [webhook.status() for webhook in node.webhooks.all()]
        if as_json:
            typer.echo(json.dumps({"webhooks": statuses}, indent=2))
            return
        table = Table("id", "url", "events", "delivered", "last success", "attempts", "last error", "next attempt")
        for s in statuses:
            table.add_row(s["id"], escape(s["url"]), ",".join(s["events"]), str(s["delivered"]),
                          s["last_success"] or "-", str(s["attempts"]), escape(s["last_error"] or "-"),
                          s["next_attempt"] or "-")
        print_table(console, table if statuses else "no webhooks")

    @webhook_app.command("remove")
    def remove_webhook(
        webhook_id: Annotated[str, typer.Argument(metavar="ID", help="The webhook's id (fedsync webhook list)")],
        data_dir: DataDirOption = None,
        database_url: DatabaseUrlOption = None,
    ) -> None:
        """Stop sending to a webhook and forget it."""
        with closing(open_node(data_dir, database_url)) as node:
            try:
                node.webhooks.remove(webhook_id)
            except EntityNotFound as e:
                raise UserError(e.detail) from None
        console.print(f"removed webhook {webhook_id}")

    app.add_typer(webhook_app, name="webhook")
