"""Conflict review: what a merge editor is shown of an item with split heads, and what a resolution must be.

Pure, like ``history.py`` and ``merge.py``: the item's parent DAG, its heads'
states and the state of one base transaction go in; a review comes out. The
rules:

- A review needs two or more heads. The base is ``history.merge_base``: of
  the heads' lowest common ancestors (a criss-cross history has several,
  all listed in ``merge_bases``) the one with the greatest generation, ties
  by the smallest gid. Only that one transaction's state is read besides
  the heads', so a review never replays the history's payloads.
- The proposal is ``merge.propose_merge`` of the heads against that base;
  heads are shown in the proposal's merge order, ``(created_at, gid)``.
- A resolution names exactly the item's current heads. One missing (a head
  that arrived after the review) or one too many (a head merged meanwhile)
  is ``StaleHead`` (409) with the current heads, so nobody merges a state
  they have not seen.
- A resolution whose title or markdown still holds conflict markers (a
  complete ``<<<<<<<``/``=======``/``>>>>>>>`` block, or a lone opening or
  closing marker carrying one of our head labels) is ``UnresolvedConflict``
  (422) listing where, unless the merge editor accepts the markers.
- Without a scope, a resolution takes the narrowest scope of its heads.
- ``conflict_since``: when the current heads split, the same on every node
  whatever order the transactions arrived in (see its docstring).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from domain import history
from domain.errors import DomainError, NotFound, StaleHead
from domain.merge import MergeProposal, Version, has_conflict_markers, propose_merge

BASE_RULE = "of the lowest common ancestors, the one with the greatest generation; ties by the smallest gid"
# A marker line as merge.py writes it: 7 signs, a space, and a label ending "(<origin>, <gid8>)".
_LABELLED_MARKER = re.compile(r"^(?:<{7}|>{7}) [^\n]*\([^\n,]+, [0-9a-f]{8}\)\r?$", re.MULTILINE)
MARKED_FIELDS = ("title", "markdown")


class NoConflict(NotFound):
    """An item that has one head: nothing to review or resolve."""

    type = "no-conflict"
    title = "No open conflict"


class UnresolvedConflict(DomainError):
    """A resolution that still holds conflict markers the merge editor did not accept."""

    status = 422
    type = "unresolved-conflict"
    title = "Conflict markers left"


@dataclass(frozen=True)
class Review:
    """An item's split heads, the base they are merged against and the proposal."""

    item: str
    heads: list[Version]  # in merge order: (created_at, gid)
    base: Version | None
    merge_bases: list[str]
    proposal: MergeProposal
    kinds: dict[str, str]  # gid -> kind of the heads and the base

    @property
    def pairwise(self) -> bool:
        """More than two heads were merged one after the other (in ``proposal.order``)."""
        return len(self.heads) > 2 and not self.proposal.trivial

    @property
    def delete_vs_edit(self) -> bool:
        return self.proposal.outcomes is not None


def base_of(parents: history.Parents, heads: Sequence[str]) -> tuple[str | None, list[str]]:
    """The merge base the review uses and every lowest common ancestor of ``heads``."""
    return history.merge_base(parents, heads), history.merge_bases(parents, heads)


def version_of(tx: Mapping[str, Any]) -> Version:
    """A transaction (or an aggregate's head summary) as a merge ``Version``."""
    return Version(gid=tx["gid"], payload=dict(tx["payload"]), author=tx["author"], origin=tx["origin"],
                   created_at=tx["created_at"], checksum=tx["checksum"], scope=tx["scope"])


def review(item: str, parents: history.Parents, head_states: Mapping[str, Mapping[str, Any]],
           load: Callable[[str], Mapping[str, Any]]) -> Review:
    """The review of an item's heads; ``load(gid)`` reads the one stored transaction used as base."""
    if len(head_states) < 2:
        raise NoConflict(f"item {item} has one head: no open conflict")
    base_gid, bases = base_of(parents, sorted(head_states))
    base_tx = load(base_gid) if base_gid is not None else None
    base = version_of(base_tx) if base_tx is not None else None
    by_gid = {gid: version_of(head) for gid, head in head_states.items()}
    proposal = propose_merge(base, list(by_gid.values()))
    kinds = {gid: head["kind"] for gid, head in head_states.items()}
    if base_tx is not None:
        kinds[base_tx["gid"]] = base_tx["kind"]
    return Review(item, [by_gid[gid] for gid in proposal.order], base, bases, proposal, kinds)


def check_heads(item: str, current: Sequence[str], named: Sequence[str]) -> None:
    """A resolution must name exactly the current heads."""
    if set(named) != set(current):
        raise StaleHead(f"the heads of item {item} changed: it now has {', '.join(sorted(current))}; "
                        "review the conflict again", heads=sorted(current))


def marker_lines(text: str) -> list[int]:
    """1-based numbers of the lines that open, split or close a conflict region."""
    lines: set[int] = set()
    for match in _LABELLED_MARKER.finditer(text):
        lines.add(text.count("\n", 0, match.start()) + 1)
    if has_conflict_markers(text):
        for number, line in enumerate(text.split("\n"), start=1):
            if line.startswith(("<<<<<<<", ">>>>>>>")) or line.rstrip("\r") == "=======":
                lines.add(number)
    return sorted(lines)


def check_resolution(document: Mapping[str, Any], *, accept_markers: bool) -> None:
    """Refuse a resolved document that still holds conflict markers, unless they are accepted."""
    if accept_markers:
        return
    left = [{"field": name, "line": line} for name in MARKED_FIELDS
            for line in marker_lines(str(document.get(name, "")))]
    if left:
        where = ", ".join(f"{m['field']} line {m['line']}" for m in left[:10])
        raise UnresolvedConflict(f"the document still holds conflict markers ({where}); resolve them, or send "
                                 "accept_markers: true to store them as they are", markers=left)


def conflict_since(parents: history.Parents, created_at: Mapping[str, str], heads: Sequence[str]) -> str:
    """When the current heads split: a function of the transaction set alone.

    For two heads, each side's first transaction that the other side lacks
    marks when that line of history began; the conflict exists from the
    later of the two, which is the transaction that split the item. With
    more heads, the earliest such moment over every pair. Unlike "when this
    node saw the second head", it does not depend on arrival order or on
    how transactions were batched, so every node and every rebuild agree.
    """
    if len(heads) < 2:
        raise ValueError("a conflict needs two or more heads")
    lines = {head: history.ancestors(parents, head) for head in heads}
    splits = []
    for a, b in combinations(sorted(set(heads)), 2):
        first_a = min(created_at[g] for g in lines[a] - lines[b] if g in created_at)
        first_b = min(created_at[g] for g in lines[b] - lines[a] if g in created_at)
        splits.append(max(first_a, first_b))
    return min(splits)


class ReviewCache:
    """Recent reviews by item and heads (a bounded LRU). A review depends on nothing but the item's heads
    and their history, all immutable transactions, so one computed for the same heads is the same review:
    a merge editor reloading the page of a large item does not merge it again."""

    def __init__(self, size: int = 16) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[str, tuple[str, ...]], Review] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, item: str, heads: Iterable[str], make: Callable[[], Review]) -> Review:
        key = (item, tuple(sorted(heads)))
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        found = make()
        with self._lock:
            self._entries[key] = found
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return found
