"""What both SQL stores share: the cursor API, the commit hooks, the recorders' hook plumbing."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Protocol
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain.commit import CommitExtras

# Called in the insert transaction with the new (sequence, state) pairs, the events' transactions in the same
# order when the save's index entries hold them, and the save's ``CommitExtras.views`` to fill (or None);
# returns what to call after the commit (or None).
InCommit = Callable[["Cursor", list[tuple[int, bytes]], "list[dict[str, Any]] | None",
                     "dict[str, dict[str, Any]] | None"], Callable[[], None] | None]


class CommitHook(Protocol):
    """Writes the rows of a save's ``CommitExtras`` that belong to it, in the save's transaction."""

    def __call__(self, cursor: Cursor, extras: CommitExtras) -> None: ...


class Cursor(ABC):
    """DB-API cursor with one placeholder style (``?``) for both databases."""

    dialect: ClassVar[str]

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    @abstractmethod
    def _sql(self, sql: str) -> str: ...

    @abstractmethod
    def uuid(self, value: UUID) -> Any:
        """A UUID as this store's column holds it."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        self.raw.execute(self._sql(sql), params)
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.raw.executemany(self._sql(sql), rows)

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], tail: str = "",
                    computed: Mapping[str, str] | None = None) -> None:
        """Insert ``rows`` (values of ``columns``, in that order) into ``table``; ``tail`` follows them (an
        ``ON CONFLICT`` clause: with ``DO UPDATE`` each key may come once only, as one statement sees
        them all on PostgreSQL); ``computed``: more columns, each with the SQL expression over ``columns``
        that gives it. Here one statement per row, which costs SQLite little."""
        names = ", ".join(columns)
        if not computed:
            self.executemany(f"INSERT INTO {table} ({names}) VALUES ({','.join('?' * len(columns))}) {tail}", rows)
            return
        values = ", ".join(f"? AS {column}" for column in columns)
        self.executemany(f"INSERT INTO {table} ({names}, {', '.join(computed)}) SELECT {names}, "
                         f"{', '.join(computed.values())} FROM (SELECT {values}) WHERE true {tail}", rows)

    def execute_later(self, sql: str, params: Sequence[Any] = ()) -> Callable[[], dict[str, Any] | None]:
        """Run a statement whose one row is wanted later: returns how to get it. Here at once; in a
        PostgreSQL pipeline it comes back with the next statement whose rows are fetched."""
        row = self.execute(sql, params).fetchone()
        return lambda: row

    def fetchone(self) -> dict[str, Any] | None:
        row = self.raw.fetchone()
        return None if row is None else dict(row)

    def fetchall(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self.raw.fetchall()]

    @property
    def rowcount(self) -> int:
        return self.raw.rowcount

    def columns(self, table: str) -> list[str]:
        """The names of a table's columns (to add one a newer version needs)."""
        self.raw.execute(f"SELECT * FROM {table} LIMIT 0")
        return [column[0] for column in self.raw.description]


class Database(ABC):
    """A minimal cursor API over the event store's own connections."""

    dialect: ClassVar[str]
    # Statements run in this process (SQLite): CPU under the interpreter lock, cheaper made by one thread than
    # by many at once. Else each is a round trip (PostgreSQL), better overlapped across threads.
    in_process: ClassVar[bool]
    sequence_column: ClassVar[str]  # the events table's column holding the outbox sequence

    recorder: HookedRecorder

    def __init__(self, recorder: HookedRecorder) -> None:
        self.recorder = recorder
        self.events_table: str = recorder.events_table_name

    @abstractmethod
    def transaction(self, *, commit: bool = True) -> AbstractContextManager[Cursor]: ...

    def read(self) -> AbstractContextManager[Cursor]:
        return self.transaction(commit=False)

    def write(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One statement, committed on its own; returns how many rows it changed."""
        with self.transaction() as cur:
            return cur.execute(sql, params).rowcount


class Rehearser(Protocol):
    """The projection rehearsed before the write lock and replayed under it (``projections/rehearsal.py``)."""

    def rehearse(self, cur: Any, txs: list[dict[str, Any]]) -> Any | None: ...

    def check_later(self, cur: Any, rehearsed: Any) -> Callable[[], dict[str, Any] | None]: ...

    def replay(self, cur: Any, rehearsed: Any, ids: Sequence[int],
               views: dict[str, dict[str, Any]] | None = None) -> Callable[[], None]: ...

    def replayed(self, rehearsed: Any, ids: Sequence[int], views: dict[str, dict[str, Any]] | None = None, *,
                 held: bool = True) -> Callable[[], None]: ...

    def forget_rows(self) -> None: ...


class HookedRecorder:
    """The commit-hook plumbing both SQL recorders mix into the library's."""

    in_commit: InCommit | None = None
    rehearser: Rehearser | None = None  # PostgreSQL only: where the write lock is worth shortening
    commit_hooks: list[CommitHook]
    events_table_name: str  # the library's

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        committed: list[Callable[[], None]] = []
        # ``rehearsed``: what the insert's steps hand on to each other (each gets its own copy of the keywords)
        ids = self._insert(stored_events, committed=committed, rehearsed=[], **kwargs)
        for callback in committed:
            callback()
        return ids

    def _insert(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """The library's insert (with the hooks it calls back)."""
        return super().insert_events(stored_events, **kwargs)  # type: ignore[misc, no-any-return]

    def _write_extras(self, cursor: Cursor, kwargs: dict[str, Any]) -> None:
        extras = kwargs.get("extras") or CommitExtras()
        for hook in self.commit_hooks:
            hook(cursor, extras)

    def _run_in_commit(self, cursor: Cursor, ids: Sequence[int] | None, stored_events: Sequence[StoredEvent],
                       kwargs: dict[str, Any]) -> None:
        if self.in_commit is None or not ids:
            return
        committed: list[Callable[[], None]] | None = kwargs.get("committed")
        extras = kwargs.get("extras") or CommitExtras()
        callback = self.in_commit(cursor, [(i, e.state) for i, e in zip(ids, stored_events, strict=True)],
                                  transactions_of(stored_events, extras), extras.views)
        if committed is not None:
            # A retried insert (PostgreSQL reconnects) calls the hook again: keep the last one only.
            committed[:] = [callback] if callback is not None else []


def transactions_of(stored_events: Sequence[StoredEvent], extras: CommitExtras) -> list[dict[str, Any]] | None:
    """The events' transactions as the save's index entries hold them (None unless each entry names its
    event, in order, and holds its transaction)."""
    index = extras.index
    if len(index) != len(stored_events):
        return None
    txs = [entry.tx for entry in index]
    for entry, event in zip(index, stored_events, strict=True):
        if entry.tx is None or entry.originator_id != event.originator_id \
                or entry.originator_version != event.originator_version:
            return None
    return txs  # type: ignore[return-value]


def chunks(values: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]
