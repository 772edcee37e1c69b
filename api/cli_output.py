"""What the CLI prints besides its results: user errors, one line each on stderr."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

errors = Console(stderr=True, soft_wrap=True)  # one line each, whatever the terminal's width


class UserError(Exception):
    """A mistake of the person at the terminal: ``main`` prints it as one line and exits 1."""


def report(message: str) -> None:
    errors.print(f"fedsync: {message}", style="red", markup=False, highlight=False)


def print_table(console: Console, table: Table | str) -> None:
    """A table as wide as it needs into a pipe or a file (nothing cut for scripts), fitted to a terminal."""
    if console.is_terminal:
        console.print(table)
    else:  # a width set when the console was made (COLUMNS) would cut every cell
        Console(file=console.file, width=1000, color_system=None).print(table)
