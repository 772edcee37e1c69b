"""The in-commit projection rehearsed before the write lock and replayed under it (PostgreSQL).

On PostgreSQL every save holds the events table's lock from its insert to
its commit, so that sequence numbers are issued in commit order; with
several serving processes on one database that lock is what they queue
for. The in-commit projection (``Projector.project_in_commit``) ran inside
that window: a round trip to read the touched entities' rows, then the
views' Python work (heads, rows, search text), about half the lock's hold
(docs/scaling.md, "what bounds each mode").

So, before the lock and in the save's own transaction, the views run over
the transactions about to be stored through a ``Rehearsal`` cursor, with
each event's sequence number ``Pending``: reads of an entity view's rows by
key go to the store, and the rows' ``seq`` (or their absence) is noted;
writes are recorded, not sent; any other read stops the rehearsal (its
answer could not be checked later). Under the lock, in the insert's round
trip, one statement locks the views' position row and reads the position,
the last stored sequence number and the ``seq`` of every noted row. When
the position is that number (every stored event is projected, and no
projector can move it before this commit) and every noted row is as it was
read (no event of those entities was projected since), the views would read
exactly what the rehearsal read, so the recorded writes are sent with the
real sequence numbers. Otherwise the projection runs under the lock as
before. Either way the views' rows are the same: the rehearsal is the
projection's own code, over the same rows.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from projections.store import Cursor, rows_by_key

_WRITE = re.compile(r"\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(\w+)", re.IGNORECASE)


class Unrehearsable(Exception):
    """A view needed a read whose answer cannot be checked under the lock."""


@dataclass(frozen=True, slots=True)
class Pending:
    """The sequence number of the ``index``-th event of the save, not known before its insert."""

    index: int


class RowCache:
    """Entity rows as this process last wrote or read them, by (table, key): a rehearsal takes them instead of
    reading the store (a round trip before the lock). Whatever it takes is checked under the lock like what it
    reads, by ``seq``, so a row another process changed since only sends that save the usual way."""

    ROW_BYTES = 32 * 1024  # a bigger row (a long document) is read when needed, not kept: memory stays bounded

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._rows: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, table: str, keys: set[str]) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {key: row for key in keys if (row := self._rows.get((table, key))) is not None}

    def put(self, table: str, key: str, rows: Mapping[str, dict[str, Any]]) -> None:
        with self._lock:
            for value, row in rows.items():
                if sum(len(v) for v in row.values() if isinstance(v, str)) > self.ROW_BYTES:
                    self._rows.pop((table, value), None)
                    continue
                self._rows[(table, value)] = row
                self._rows.move_to_end((table, value))
            while len(self._rows) > self.size:
                self._rows.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()


class Rehearsal:
    """A cursor for the views that reads entity rows by key, notes them, and records the writes."""

    def __init__(self, cur: Cursor, checkable: Mapping[str, str], cache: RowCache | None = None) -> None:
        self.cur = cur
        self.checkable = checkable  # table -> key column, of the tables whose rows carry a ``seq``
        self.cache = cache
        self.writes: list[tuple[str, tuple[Any, ...]]] = []
        self.read: dict[str, dict[str, int | None]] = {}  # table -> key -> seq (None: no row)
        self._written: set[str] = set()

    def rows_by_key(self, table: str, key: str, keys: Any) -> dict[str, dict[str, Any]]:
        keys = set(keys)
        if not keys:
            return {}
        # A row this rehearsal wrote would be read as it was before: not what the projection reads.
        if self.checkable.get(table) != key or table in self._written:
            raise Unrehearsable(f"rows of {table} by {key}")
        found = self.cache.get(table, keys) if self.cache is not None else {}
        if len(found) < len(keys):
            read = rows_by_key(self.cur, table, key, keys - found.keys())
            if self.cache is not None:
                self.cache.put(table, key, read)
            found.update(read)
        noted = self.read.setdefault(table, {})
        noted.update((k, found[k]["seq"] if k in found else None) for k in keys)
        return found

    def _record(self, method: str, sql: str, args: tuple[Any, ...]) -> None:
        write = _WRITE.match(sql)
        if write is None:
            raise Unrehearsable(sql[:60])
        self._written.add(write[1].lower())
        self.writes.append((method, args))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rehearsal:
        self._record("execute", sql, (sql, tuple(params)))
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._record("executemany", sql, (sql, [tuple(row) for row in rows]))

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], tail: str = "",
                    computed: Mapping[str, str] | None = None) -> None:
        if rows:
            self._written.add(table.lower())
            self.writes.append(("insert_rows", (table, columns, [tuple(row) for row in rows], tail, computed)))

    def execute_later(self, sql: str, params: Sequence[Any] = ()) -> Callable[[], dict[str, Any] | None]:
        raise Unrehearsable(sql[:60])

    def fetchone(self) -> dict[str, Any] | None:
        raise Unrehearsable("a statement's answer")

    def fetchall(self) -> list[dict[str, Any]]:
        raise Unrehearsable("a statement's answer")

    @property
    def rowcount(self) -> int:
        raise Unrehearsable("a statement's row count")


@dataclass(frozen=True, slots=True)
class Rehearsed:
    """What a rehearsal read and would write; ``items``: the documents rows it would write, by item gid."""

    read: dict[str, dict[str, int | None]]
    writes: list[tuple[str, tuple[Any, ...]]]
    items: dict[str, dict[str, Any]]

    def check_sql(self, checkable: Mapping[str, str], events_table: str, sequence_column: str
                  ) -> tuple[str, list[Any]]:
        """One statement (PostgreSQL; under the write lock, before the insert) that locks the views' position
        row and tells whether the rehearsal holds: the position is the last stored number and every noted row
        has the ``seq`` it was read with (or is still missing). Its answer, ``holds``, is also kept in the
        transaction's setting ``fedsync.holds``, for statements sent with it (``one_trip.py``)."""
        conditions = [f"position = (SELECT COALESCE(MAX({sequence_column}), 0) FROM {events_table})"]
        params: list[Any] = []
        for table, noted in sorted(self.read.items()):
            key = checkable[table]
            conditions.append(f"COALESCE((SELECT jsonb_object_agg({key}, seq) FROM {table} WHERE {key} = ANY(?)), "
                              "'{}'::jsonb) = ?::jsonb")
            params += [sorted(noted), orjson.dumps({k: seq for k, seq in noted.items() if seq is not None}).decode()]
        return (f"SELECT set_config('fedsync.holds', ({' AND '.join(conditions)})::text, true) AS holds "
                "FROM view_tracking WHERE name = 'views' FOR UPDATE", params)

    @staticmethod
    def holds(row: dict[str, Any] | None) -> bool:
        """Whether the views are as the rehearsal read them, by the check statement's row."""
        return row is not None and row["holds"] == "true"

    def resolved(self, ids: Sequence[int]) -> list[tuple[str, tuple[Any, ...]]]:
        """The writes with the events' sequence numbers (``ids``, in the events' order) for the pending ones."""
        real = _real(ids)
        writes: list[tuple[str, tuple[Any, ...]]] = []
        for method, args in self.writes:
            if method == "insert_rows":
                table, columns, values, tail, computed = args
                writes.append((method, (table, columns, _rows(real, values), tail, computed)))
            elif method == "executemany":
                writes.append((method, (args[0], _rows(real, args[1]))))
            else:
                writes.append((method, (args[0], tuple(map(real, args[1])))))
        return writes

    def items_with(self, ids: Sequence[int]) -> dict[str, dict[str, Any]]:
        """The documents rows the rehearsal wrote, with the events' sequence numbers."""
        real = _real(ids)
        return {gid: {name: real(value) for name, value in row.items()} for gid, row in self.items.items()}

    def written_rows(self, ids: Sequence[int], checkable: Mapping[str, str]) -> dict[str, dict[str, dict[str, Any]]]:
        """The entity rows the rehearsal wrote, as stored (every column, the events' numbers), by table and key."""
        real = _real(ids)
        rows: dict[str, dict[str, dict[str, Any]]] = {}
        for method, args in self.writes:
            if method == "insert_rows" and args[0] in checkable and not args[4]:
                table, columns, values = args[0], args[1], args[2]
                key = columns.index(checkable[table])
                rows.setdefault(table, {}).update((row[key], dict(zip(columns, map(real, row), strict=True)))
                                                  for row in values)
        return rows


def _real(ids: Sequence[int]) -> Callable[[Any], Any]:
    """A value with a pending number replaced by the event's (``ids`` in the events' order)."""
    def real(value: Any) -> Any:
        return ids[value.index] if isinstance(value, Pending) else value
    return real


def _rows(real: Callable[[Any], Any], values: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [tuple(map(real, row)) for row in values]
