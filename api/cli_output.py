"""What the CLI prints besides its results: user errors, one line each on stderr."""

from __future__ import annotations

from rich.console import Console

errors = Console(stderr=True, soft_wrap=True)  # one line each, whatever the terminal's width


class UserError(Exception):
    """A mistake of the person at the terminal: ``main`` prints it as one line and exits 1."""


def report(message: str) -> None:
    errors.print(f"fedsync: {message}", style="red", markup=False, highlight=False)
