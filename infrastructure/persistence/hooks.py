"""The commit hooks: rows written in the same database transaction as a save's events.

``write_index`` belongs to every recorder; the node registers the others
(``Node`` wires them), each writing the part of ``CommitExtras`` it owns.
Adding a kind of row that must commit with the events means a field in
``CommitExtras`` and a hook here, nothing else.
"""

from __future__ import annotations

import json

from domain.commit import CommitExtras
from infrastructure.persistence.database import Cursor


def write_index(cursor: Cursor, extras: CommitExtras) -> None:
    """gid -> (aggregate, version) for every transaction the save stores."""
    rows = [(e.gid, cursor.uuid(e.originator_id), e.originator_version) for e in extras.index]
    cursor.insert_rows("tx_index", ("gid", "originator_id", "originator_version"), rows)


def write_pending(cursor: Cursor, extras: CommitExtras) -> None:
    """Received transactions held for their parents, and pending rows now settled."""
    cursor.executemany(
        "INSERT INTO pending (gid, sender, tx, missing, received_at, attempts) VALUES (?, ?, ?, ?, ?, 1) "
        "ON CONFLICT (gid) DO UPDATE SET missing = excluded.missing, attempts = pending.attempts + 1",
        [(h.gid, h.sender, json.dumps(h.tx), json.dumps(h.missing), h.received_at) for h in extras.held],
    )
    cursor.executemany("DELETE FROM pending WHERE gid = ?", [(g,) for g in extras.settled])


def write_pull_cursor(cursor: Cursor, extras: CommitExtras) -> None:
    """The outbox position a pull reached, committed with what it applied."""
    if extras.pull_cursor is not None:
        cursor.execute("UPDATE peers SET pull_cursor = ? WHERE name = ?",
                       (extras.pull_cursor.cursor, extras.pull_cursor.peer))
