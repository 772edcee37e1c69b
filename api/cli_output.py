"""What the CLI prints besides its results: user errors, one line each on stderr."""

from __future__ import annotations

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

errors = Console(stderr=True, soft_wrap=True)  # one line each, whatever the terminal's width


class UserError(Exception):
    """A mistake of the person at the terminal: ``main`` prints it as one line and exits 1."""


def report(message: str) -> None:
    errors.print(f"fedsync: {message}", style="red", markup=False, highlight=False)


def opened(node: str, store: str) -> None:
    """Say which node and store a command opened: on a terminal only, so that what a script reads (the
    output, and a mistake's one line) stays the same."""
    if errors.is_terminal:
        errors.print(f"node {node}, store {store}", style="dim", markup=False, highlight=False)


def print_table(console: Console, table: Table | str) -> None:
    """A table as wide as it needs into a pipe or a file (nothing cut for scripts); on a terminal, the table
    if it fits, else one block of ``column: value`` lines per row (nothing cut either)."""
    if not console.is_terminal:  # a width set when the console was made (COLUMNS) would cut every cell
        Console(file=console.file, width=1000, color_system=None).print(table)
    elif isinstance(table, str) or _natural_width(console, table) <= console.width:
        console.print(table)
    else:
        print_records(console, table)


def _natural_width(console: Console, table: Table) -> int:
    return Measurement.get(console, console.options.update(max_width=100_000), table).maximum


def print_records(console: Console, table: Table) -> None:
    """Each row of ``table`` as lines of ``column: value``, wrapped at the terminal's width, never cut."""
    headers = [str(column.header) for column in table.columns]
    width = max(map(len, headers))
    for number, row in enumerate(zip(*(list(column.cells) for column in table.columns), strict=True)):
        if number:
            console.print()
        for header, cell in zip(headers, row, strict=True):
            value = cell if isinstance(cell, Text) else Text.from_markup(cell) if isinstance(cell, str) else cell
            console.print(Text(f"{header:>{width}}: ", style="bold") + value, overflow="fold")
