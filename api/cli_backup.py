"""``fedsync backup`` and ``fedsync restore`` (``infrastructure/backup.py`` says what a backup holds)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from api.cli_output import UserError
from domain.transaction import utc_now
from infrastructure.backup import BackupError, backup, restore
from infrastructure.node import Node
from infrastructure.settings import Settings

console = Console()
DataDirOption = Annotated[Path | None, typer.Option("--data-dir", help="Data dir [env FEDSYNC_DATA_DIR]")]
DatabaseUrlOption = Annotated[str | None, typer.Option("--database-url", help="[env FEDSYNC_DATABASE_URL]")]


def register(app: typer.Typer, open_node: Callable[[Settings], Node]) -> None:
    """Add ``fedsync backup`` and ``fedsync restore`` to the main CLI."""

    @app.command("backup")
    def backup_node(
        target: Annotated[Path, typer.Argument(help="A new directory for the backup (it will hold private keys)")],
        data_dir: DataDirOption = None,
        database_url: DatabaseUrlOption = None,
    ) -> None:
        """A consistent backup of the node (config, keys, store), taken while it serves."""
        settings = Settings.from_env(data_dir=data_dir, database_url=database_url)
        with closing(open_node(settings)) as node:
            events = node.app.recorder.max_notification_id() or 0
        try:
            manifest = backup(settings, target, events, utc_now())
        except (BackupError, OSError) as e:
            raise UserError(str(e)) from None
        console.print(f"backed up {manifest.node}: {manifest.events} events, {manifest.store} store, keys and "
                      f"config, in {target}")

    @app.command("restore")
    def restore_node(
        source: Annotated[Path, typer.Argument(help="A directory made by 'fedsync backup'")],
        data_dir: DataDirOption = None,
        database_url: DatabaseUrlOption = None,
        force: Annotated[bool, typer.Option(help="Replace the node in the data dir")] = False,
    ) -> None:
        """Put a backup into an empty data dir (and, for PostgreSQL, an empty database: --database-url, or else
        the one the node had); then start the node as usual: it goes on from the cursors it had."""
        settings = Settings.from_env(data_dir=data_dir, database_url=database_url)
        try:
            manifest, restored_url = restore(source, settings, force=force)
        except (BackupError, OSError) as e:
            raise UserError(str(e)) from None
        with closing(open_node(settings.model_copy(update={"database_url": restored_url}))) as node:
            events = node.app.recorder.max_notification_id() or 0
        console.print(f"restored {manifest.node} from {manifest.created_at}: {events} events; "
                      "start it with 'fedsync serve', then 'fedsync sync' catches up with its peers")
