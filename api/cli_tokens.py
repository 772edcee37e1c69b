"""``fedsync token``: issue, list and revoke editor tokens (infrastructure/token_registry.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import closing
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from api.cli_output import UserError, print_table
from domain.errors import TokenNotFound
from infrastructure import tokens
from infrastructure.node import Node

token_app = typer.Typer(help="Editor tokens: issue, list, revoke.", no_args_is_help=True)
console = Console()
DataDirOption = Annotated[str | None, typer.Option("--data-dir", help="Data dir [env FEDSYNC_DATA_DIR]")]
DatabaseUrlOption = Annotated[str | None, typer.Option(
    "--database-url", help="postgresql://... [env FEDSYNC_DATABASE_URL, default SQLite in the data dir]")]
_DEFAULTS = ", ".join(f"{role} {tokens.duration_text(life)}" for role, life in tokens.DEFAULT_LIFETIMES.items())


def _table(records: list[dict[str, Any]]) -> Table:
    table = Table("jti", "subject", "role", "team", "label", "issued", "expires", "status")
    for r in records:
        table.add_row(r["jti"], r["subject"], r["role"], r["team"] or "-", r["label"] or ("(legacy)" if r["legacy"]
                      else "-"), r["issued_at"], r["expires_at"], r["status"])
    return table


def register(app: typer.Typer, open_node: Callable[[str | None, str | None], Node]) -> None:
    """Add ``fedsync token ...`` to the main CLI (``open_node`` opens the node of a data dir and store)."""

    @token_app.command("create")
    def create_token(
        name: Annotated[str, typer.Argument(help="The editor's name (A-Z a-z 0-9 . _ ~ -); authors are name@<node>")],
        role: Annotated[str, typer.Option(help="editor, admin or merge")] = "editor",
        team: Annotated[str | None, typer.Option(help="The editor's team (TEAM items are shared within it)")] = None,
        expires: Annotated[str | None, typer.Option(
            "--expires", "--ttl", help=f"Lifetime: 90m, 12h, 30d, 2w ... (default by role: {_DEFAULTS})")] = None,
        label: Annotated[str | None, typer.Option(help="A note kept with the record (who, what for)")] = None,
        data_dir: DataDirOption = None,
        database_url: DatabaseUrlOption = None,
    ) -> None:
        """Print a bearer token for an editor of this node, signed with the node key, and record it."""
        try:
            lifetime = tokens.parse_duration(expires) if expires is not None else None
        except ValueError as e:
            raise UserError(str(e)) from None
        with closing(open_node(data_dir, database_url)) as node:
            try:
                token = node.tokens.issue(name, role=role, team=team, lifetime=lifetime, label=label)
            except ValueError as e:
                raise UserError(str(e)) from None
        typer.echo(token)

    @token_app.command("list")
    def list_tokens(
        every: Annotated[bool, typer.Option("--all", help="Also expired, revoked and signed-out tokens")] = False,
        subject: Annotated[str | None, typer.Option(help="Only this editor's tokens")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="JSON ({\"tokens\": [...]}) instead of a table")] = False,
        data_dir: DataDirOption = None,
        database_url: DatabaseUrlOption = None,
    ) -> None:
        """The tokens issued here (never the tokens themselves): the live ones unless --all."""
        with closing(open_node(data_dir, database_url)) as node:
            records = node.tokens.records(subject=subject, every=every)
        if as_json:
            typer.echo(json.dumps({"tokens": records}, indent=2))
        else:
            print_table(console, _table(records) if records else "no tokens")

    @token_app.command("revoke")
    def revoke_token(
        jti: Annotated[str | None, typer.Argument(help="The token's jti (fedsync token list)")] = None,
        all_for: Annotated[str | None, typer.Option(
            "--all-for", help="Revoke every token of this editor issued until now instead")] = None,
        data_dir: DataDirOption = None,
        database_url: DatabaseUrlOption = None,
    ) -> None:
        """Revoke a token; a running server refuses it within FEDSYNC_TOKEN_REFRESH_INTERVAL seconds (2)."""
        if (jti is None) == (all_for is None):
            raise UserError("give a JTI or --all-for SUBJECT (one of them)")
        with closing(open_node(data_dir, database_url)) as node:
            by = f"cli@{node.name}"
            try:
                revoked = [node.tokens.revoke(jti, by=by)] if jti is not None \
                    else node.tokens.revoke_all_for(all_for or "", by=by)
            except TokenNotFound as e:
                raise UserError(e.detail) from None
            except ValueError as e:
                raise UserError(str(e)) from None
            interval = node.settings.token_refresh_interval
        for r in revoked:
            console.print(f"revoked {r['jti']} ({r['subject']}, {r['role']}, issued {r['issued_at']})")
        if all_for is not None:
            console.print(f"every token of {all_for} issued until now is revoked, listed or not "
                          f"({len(revoked)} live in the list)")
        console.print(f"a running fedsync serve on this store refuses {'it' if jti else 'them'} "
                      f"within {interval:g} s")

    app.add_typer(token_app, name="token")
