"""What the read models need of the database, and how they read rows by key.

A cursor with one placeholder style (``?``) on both databases, and
transactions that yield one, as structural types: ``infrastructure/persistence``
provides them, and the read models do not depend on how the store is built.
Lookups by many keys go in chunks, so a rebuild batch never exceeds the
database's bound on query parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], tail: str = "",
                    computed: Mapping[str, str] | None = None) -> None:
        ...

    def execute_later(self, sql: str, params: Sequence[Any] = ()) -> Callable[[], dict[str, Any] | None]:
        """Run a statement whose one row is wanted later; returns how to get it."""
        ...

    def fetchone(self) -> dict[str, Any] | None: ...

    def fetchall(self) -> list[dict[str, Any]]: ...

    @property
    def rowcount(self) -> int: ...


class Database(Protocol):
    events_table: str
    sequence_column: str  # the events table's column that numbers events in order

    def transaction(self) -> AbstractContextManager[Cursor]: ...

    def read(self) -> AbstractContextManager[Cursor]: ...


Key = TypeVar("Key", str, int)
CHUNK = 500  # keys per IN (...) list, well under SQLite's bound on parameters


def chunks(values: Iterable[Key]) -> list[list[Key]]:
    """The values sorted and cut into lists of at most CHUNK, for IN (...) queries."""
    ordered = sorted(values)
    return [ordered[i : i + CHUNK] for i in range(0, len(ordered), CHUNK)]


def rows_by_key(cur: Cursor, table: str, key: str, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The rows of ``table`` whose ``key`` column is one of ``keys``, by that key (the cursor's own reader if it
    has one: ``projections.rehearsal.Rehearsal`` notes what it read)."""
    own = getattr(cur, "rows_by_key", None)
    if own is not None:
        return own(table, key, keys)  # type: ignore[no-any-return]
    found: dict[str, dict[str, Any]] = {}
    for chunk in chunks(keys):
        rows = cur.execute(f"SELECT * FROM {table} WHERE {key} IN ({','.join('?' * len(chunk))})", chunk).fetchall()
        found.update((row[key], row) for row in rows)
    return found
