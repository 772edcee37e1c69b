"""How a view row keeps an entity's heads: the primary head in columns, the others in JSON.

The primary head is the head whose state is current (the latest
``(created_at, gid)``, ``domain.entity.latest``): its summary is spread over
ordinary columns (its payload over the view's own columns), ``heads`` holds
every head gid and ``other_heads`` the summaries of the other heads, with
their payloads, sorted by gid. So a later transaction that removes the
primary head can fall back on another head without reading the event store.

The primary head's own scope is ``head_scope`` (and whether it deletes,
``head_removed``); ``scope`` and the view's deletion column hold the
entity's effective state over all heads (``domain.entity.effective``), which
is what visibility reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from typing import Any, ClassVar

import orjson

from domain.entity import effective, head_summary, latest, mark

Heads = dict[str, dict[str, Any]]  # head gid -> summary (gid, kind, created_at, ..., payload)

# summary key -> the column that holds it for the primary head
_PRIMARY_COLUMNS = (
    ("gid", "head"),
    ("kind", "head_kind"),
    ("created_at", "updated_at"),
    ("author", "updated_by"),
    ("origin", "head_origin"),
    ("scope", "head_scope"),
    ("checksum", "checksum"),
)
_primary_values = itemgetter(*(key for key, _ in _PRIMARY_COLUMNS))


def dumps(value: Any) -> str:
    """A JSON column's text (compact, the same on SQLite and PostgreSQL)."""
    return orjson.dumps(value).decode()


def loads(text: str | None) -> Any:
    return orjson.loads(text) if text else None


def advance(heads: Heads, tx: dict[str, Any]) -> Heads:
    """The heads after a transaction: its parents stop being heads, it becomes one."""
    for parent in tx["parents"]:
        heads.pop(parent, None)
    heads[tx["gid"]] = head_summary(tx)
    return heads


@dataclass(frozen=True, slots=True)
class HeadRow:
    """An entity's heads as a view row stores them."""

    primary: dict[str, Any]
    others: list[dict[str, Any]]  # sorted by gid
    gids: list[str]  # every head, sorted
    effective: tuple[str, bool]  # the entity's scope and deletion state over all heads

    COLUMNS: ClassVar[tuple[str, ...]] = ("heads", "other_heads", *(column for _, column in _PRIMARY_COLUMNS),
                                          "head_removed", "scope")

    @classmethod
    def of(cls, heads: Heads) -> HeadRow:
        primary = latest(list(heads.values()))
        others = sorted((h for h in heads.values() if h["gid"] != primary["gid"]), key=lambda h: h["gid"])
        return cls(primary, others, sorted(heads), effective(heads.values()))

    @classmethod
    def from_row(cls, row: dict[str, Any], payload: dict[str, Any] | None = None) -> HeadRow:
        """The heads a row stores; ``payload`` is the primary head's, read from the view's own columns."""
        primary = {key: row[column] for key, column in _PRIMARY_COLUMNS}
        primary["payload"] = payload
        others = loads(row["other_heads"]) or []
        return cls(primary, others, loads(row["heads"]), effective([primary, *others]))

    def to_row(self) -> tuple[Any, ...]:
        """The values of ``COLUMNS``, in that order."""
        return (dumps(self.gids), dumps(self.others), *_primary_values(self.primary),
                int(mark(self.primary)[1]), self.effective[0])

    @property
    def heads(self) -> Heads:
        return {self.primary["gid"]: self.primary, **{h["gid"]: h for h in self.others}}
