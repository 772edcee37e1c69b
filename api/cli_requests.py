"""``fedsync share-requests``: the admin's answers to reshare requests (infrastructure/reshares.py)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from api.cli_output import UserError, print_table
from domain.errors import EntityNotFound
from infrastructure.node import Node

requests_app = typer.Typer(help="Requests from share holders to share this node's items with other nodes.",
                           invoke_without_command=True)
console = Console()
DataDirOption = Annotated[str | None, typer.Option("--data-dir")]


def register(app: typer.Typer, open_node: Callable[[str | None], Node]) -> None:
    @requests_app.callback()
    def list_requests(ctx: typer.Context, data_dir: DataDirOption = None,
                      every: Annotated[bool, typer.Option("--all", help="also the answered ones")] = False) -> None:
        """List the requests waiting for an answer (the policy answers the others: FEDSYNC_RESHARE_POLICY)."""
        if ctx.invoked_subcommand is not None:
            return
        with closing(open_node(data_dir)) as node:
            rows = node.reshares.requests(waiting_only=not every)
        table = Table("request", "item", "asked by", "share with", "permission", "status")
        for r in rows:
            table.add_row(r["request"], f"{r['title']} ({r['item']})", r["requester"], r["peer"], r["permission"],
                          r["status"] or "waiting")
        print_table(console, table if rows else "no requests waiting")

    @requests_app.command("policy")
    def policy(choice: Annotated[str | None, typer.Argument(
                   help="edit-holders: grant requests from nodes holding an edit share at once; "
                        "admin: every request waits for you")] = None,
               data_dir: DataDirOption = None) -> None:
        """Show or set who answers reshare requests (default: edit-holders)."""
        with closing(open_node(data_dir)) as node:
            if choice is not None:
                try:
                    node.reshares.set_policy(choice)
                except ValueError as e:
                    raise UserError(str(e)) from None
            console.print(f"reshare policy: {node.reshares.policy}")

    @requests_app.command("grant")
    def grant(request: str, data_dir: DataDirOption = None) -> None:
        """Share the item as the request asks."""
        with closing(open_node(data_dir)) as node:
            try:
                share = node.reshares.grant(request, decided_by=f"admin@{node.name}")
            except EntityNotFound as e:
                raise UserError(e.detail) from None
        console.print(f"granted: share {share}")

    @requests_app.command("refuse")
    def refuse(request: str, data_dir: DataDirOption = None) -> None:
        """Refuse a request (nothing is shared; the requester is not told)."""
        with closing(open_node(data_dir)) as node:
            try:
                node.reshares.refuse(request, decided_by=f"admin@{node.name}")
            except EntityNotFound as e:
                raise UserError(e.detail) from None
        console.print(f"refused: {request}")

    app.add_typer(requests_app, name="share-requests")
