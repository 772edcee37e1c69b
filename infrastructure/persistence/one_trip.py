"""A PostgreSQL save in one round trip, when its projection was rehearsed (``projections/rehearsal.py``).

The library's save takes a round trip for the insert (to learn the events'
sequence numbers), one for the commit and one more to leave psycopg's
pipeline; the table lock is held from the first to the commit, over the
leader's wake-ups in between. When a rehearsal's writes can all be made
conditional in SQL, none of that waits for the client: ``BEGIN``, the
commit hooks' rows, the table lock, the rehearsal's check (its outcome kept
in a transaction-local setting, ``fedsync.holds``), the insert (the numbers
it gave kept in ``fedsync.ids``), the views' writes with each pending number
read from ``fedsync.ids`` and each write made only when ``fedsync.holds``,
the position, ``COMMIT``: sent together, answered together. The table lock
is then held only while PostgreSQL runs them and flushes the commit.

If the check did not hold, the views' writes did nothing and the events are
stored all the same; the projector catches up after the commit, as after any
save it could not project in its commit. A failing statement fails the
whole save (rolled back), as in the library's save.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from projections.rehearsal import Pending, Rehearsed

# Each a scalar subquery, which PostgreSQL runs once per statement (an InitPlan): as a plain expression the
# setting was read, and the whole array of numbers parsed, for every row, O(rows^2): 12.8 ms instead of 0.2 ms
# for a page of 500 received transactions, per statement with a pending number.
IDS = "((SELECT current_setting('fedsync.ids')::bigint[]))"
HOLDS = "(SELECT current_setting('fedsync.holds', true) = 'true')"
_DELETE = re.compile(r"\s*(DELETE\s+FROM\s+\w+\s+WHERE)\s+([^;]*)", re.IGNORECASE)
_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)

Statement = tuple[str, Sequence[Any]]


def gated_writes(rehearsed: Rehearsed, count: int, insert_sql: Callable[..., Statement]) -> list[Statement] | None:
    """The rehearsal's writes, each made only if it holds and with the pending numbers read from the insert's;
    None when one cannot be written so (then the save takes the library's way). ``insert_sql``: the cursor's
    statement for ``insert_rows`` (``postgres.insert_rows_sql``). Placeholders are ``?``."""
    statements: list[Statement] = []
    for method, args in rehearsed.writes:
        if method == "insert_rows":
            statement = _gated_insert(insert_sql, *args)
        elif method == "execute":
            statement = _gated_delete(*args)
        else:
            statement = None
        if statement is None:
            return None
        statements.append(statement)
    statements.append((f"UPDATE view_tracking SET position = {IDS}[{count}] WHERE name = 'views' AND {HOLDS}", ()))
    return statements


def _gated_insert(insert_sql: Callable[..., Statement], table: str, columns: Sequence[str],
                  rows: list[tuple[Any, ...]], tail: str, computed: Mapping[str, str] | None) -> Statement | None:
    pending = {i for row in rows for i, value in enumerate(row) if isinstance(value, Pending)}
    if any(not isinstance(row[i], Pending) for row in rows for i in pending):
        return None  # a column with both kinds of number: not one expression
    encoded = [tuple(-(value.index + 1) if isinstance(value, Pending) else value for value in row) for row in rows]
    chosen = [f"{IDS}[-{column}]" if i in pending else column for i, column in enumerate(columns)]
    return insert_sql(table, columns, encoded, tail, computed, chosen=chosen, where=HOLDS)


def _gated_delete(sql: str, params: Sequence[Any]) -> Statement | None:
    delete = _DELETE.fullmatch(sql)
    if delete is None or _RETURNING.search(sql) or any(isinstance(p, Pending) for p in params):
        return None
    return f"{delete[1]} ({delete[2]}) AND {HOLDS}", params


def ids_of(text: str) -> list[int]:
    """The numbers ``fedsync.ids`` holds (PostgreSQL's text of a bigint array: ``{1,2,3}``)."""
    return [int(value) for value in text.strip("{}").split(",")]
