"""What the read models need of the database, as structural types.

A cursor with one placeholder style (``?``) on both databases, and
transactions that yield one; ``infrastructure/persistence.py`` provides
them. Protocols rather than imports, so the read models do not depend on
how the store is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    def fetchone(self) -> dict[str, Any] | None: ...

    def fetchall(self) -> list[dict[str, Any]]: ...

    @property
    def rowcount(self) -> int: ...


class Database(Protocol):
    events_table: str
    sequence_column: str  # the events table's column that numbers events in order

    def transaction(self) -> AbstractContextManager[Cursor]: ...

    def read(self) -> AbstractContextManager[Cursor]: ...
