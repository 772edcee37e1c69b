"""Three-way merge proposals for an item with split heads.

Pure: versions in, a proposal out; nothing is stored or sent, and the result
never depends on the order the heads are given in. The rules:

- Heads with equal checksums are a trivial conflict: the proposal is that
  state and only a scope disagreement can still need a human.
- ``title`` and ``markdown`` are merged line by line with merge3 against the
  base. Clean regions are merged; regions both sides changed differently are
  marked ``<<<<<<< author (origin, gid8)`` / ``=======`` /
  ``>>>>>>> author (origin, gid8)`` and need a human. Text without a final
  newline merges like any other; the result ends with a newline when the
  side that changed that fact says so.
- ``tags`` merge as sets against the base: a tag added on any side is kept, a
  base tag removed on any side is removed. Never needs a human.
- ``forked_from`` is the union of the heads' lists: lineage is only ever
  added to, and forgetting a parent item would break the fork projection.
- ``scope`` is the narrowest scope among the heads (OWNER < TEAM < DOMAIN <
  NETWORK < PUBLIC): narrowing is safe, widening must be a human's choice, so
  heads that disagree need a human.
- ``deleted``: all heads deleted -> the latest head's tombstone, clean. Some
  deleted while the others left the document as in the base -> the deletion
  applies, clean. Some deleted while another edited -> needs a human; the
  proposal keeps the merged live document and ``outcomes`` offers "keep" and
  "delete".
- No base (independent roots): merged against an empty document, so every
  line the heads do not share conflicts.
- More than two heads: sorted by ``(created_at, gid)`` and merged pairwise,
  accumulating: merge(base, h1, h2) -> m12, merge(base, m12, h3), ...
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from merge3 import Merge3

from domain.transaction import SCOPES

DOCUMENT_FIELDS = ("title", "markdown", "tags", "forked_from", "deleted")
EMPTY_DOCUMENT: dict[str, Any] = {
    "title": "",
    "markdown": "",
    "tags": [],
    "forked_from": [],
    "deleted": False,
}
# A complete block; "\r?" because merge3 writes CRLF markers into a CRLF text.
_MARKERS = re.compile(r"^<{7}(?: [^\n]*)?$.*?^={7}\r?$.*?^>{7}(?: [^\n]*)?$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Version:
    """One head (or the base) of an item: a transaction's document and metadata."""

    gid: str
    payload: dict[str, Any]
    author: str
    origin: str
    created_at: str
    checksum: str
    scope: str


@dataclass(frozen=True)
class FieldProposal:
    """The proposed value of one field and how it was reached."""

    value: Any
    needs_human: bool
    note: str


@dataclass(frozen=True)
class MergeProposal:
    """A proposed merge of an item's heads; ``fields`` covers the document and scope."""

    fields: dict[str, FieldProposal]
    needs_human: bool
    trivial: bool
    order: list[str]
    notes: list[str]
    outcomes: list[dict[str, Any]] | None = None

    @property
    def document(self) -> dict[str, Any]:
        """The proposed payload (without scope)."""
        return {name: self.fields[name].value for name in DOCUMENT_FIELDS}


def has_conflict_markers(text: str) -> bool:
    """True when ``text`` still holds a ``<<<<<<<`` / ``=======`` / ``>>>>>>>`` block."""
    return _MARKERS.search(text) is not None


def propose_merge(base: Version | None, heads: Sequence[Version]) -> MergeProposal:
    """Propose a three-way merge of ``heads`` against ``base``."""
    if not heads:
        raise ValueError("a merge needs at least one head")
    ordered = sorted(heads, key=lambda head: (head.created_at, head.gid))
    order = [head.gid for head in ordered]
    scope = _merge_scope(ordered)
    if len({head.checksum for head in ordered}) == 1:
        fields = _clean_fields(ordered[0], "equal checksums on every head")
        return _proposal(fields, scope, order, ["heads have equal checksums"], trivial=True)
    base_doc = _document(base.payload) if base else EMPTY_DOCUMENT
    notes = [] if base else ["no common ancestor: merged against an empty document"]
    deleted = [head for head in ordered if head.payload["deleted"]]
    live = [head for head in ordered if not head.payload["deleted"]]
    if deleted and not any(_document(h.payload) != _undeleted(base_doc) for h in live):
        return _deletion(deleted, live, scope, order, notes)
    fields = _merge_live(base_doc, live)
    notes += _order_notes(live)
    if not deleted:
        return _proposal(fields, scope, order, notes)
    return _delete_vs_edit(fields, deleted, live, scope, order, notes)


def _proposal(
    fields: dict[str, FieldProposal],
    scope: FieldProposal,
    order: list[str],
    notes: list[str],
    trivial: bool = False,
    outcomes: list[dict[str, Any]] | None = None,
) -> MergeProposal:
    fields = {**fields, "scope": scope}
    needs_human = any(field.needs_human for field in fields.values())
    return MergeProposal(fields, needs_human, trivial, order, notes, outcomes)


def _merge_live(base_doc: dict[str, Any], live: Sequence[Version]) -> dict[str, FieldProposal]:
    """Merge the document fields of the non-deleted heads, pairwise in order."""
    fields = {name: _merge_text_field(name, base_doc, live) for name in ("title", "markdown")}
    tags = set(live[0].payload["tags"])
    for head in live[1:]:
        tags = _merge_set(set(base_doc["tags"]), tags, set(head.payload["tags"]))
    fields["tags"] = FieldProposal(sorted(tags), False, "merged as sets against the base")
    forks = {gid for head in live for gid in head.payload["forked_from"]}
    fields["forked_from"] = FieldProposal(sorted(forks), False, "union of the heads")
    fields["deleted"] = FieldProposal(False, False, "no head deleted the item")
    return fields


def _merge_text_field(
    name: str, base_doc: dict[str, Any], live: Sequence[Version]
) -> FieldProposal:
    value, label = live[0].payload[name], _label(live[0])
    if len(live) == 1:
        return FieldProposal(value, False, f"taken from {label}, the only live head")
    notes: list[str] = []
    for head in live[1:]:
        value, conflicts = _merge_text(
            base_doc[name], value, head.payload[name], label, _label(head)
        )
        if conflicts:
            notes.append(f"{conflicts} conflicting region(s) marked: {label} vs {_label(head)}")
        label = f"{label} + {_label(head)}"
    return FieldProposal(value, bool(notes), "; ".join(notes) or "merged cleanly")


def _merge_text(base: str, a: str, b: str, label_a: str, label_b: str) -> tuple[str, int]:
    """Merged text (conflicts marked) and the number of conflicting regions."""
    (base_lines, base_nl), (a_lines, a_nl), (b_lines, b_nl) = map(_split, (base, a, b))
    merge = Merge3(base_lines, a_lines, b_lines)
    # reprocess narrows each conflict to the lines the two sides disagree on,
    # which is what makes "no base" conflict line by line, not as one block.
    # The regions are computed once (each computation diffs both sides against
    # the base) and written out here, as merge3's merge_lines would.
    regions = list(merge.reprocess_merge_regions(merge.merge_regions()))
    conflicts = sum(1 for region in regions if region[0] == "conflict")
    merged = "".join(_merged_lines(regions, base_lines, a_lines, b_lines, label_a, label_b))
    # The final newline is a fact merged three-way like any other.
    ends_with_newline = a_nl if a_nl != base_nl else b_nl
    if not ends_with_newline and merged.endswith("\n"):
        merged = merged[:-1]
    return merged, conflicts


def _merged_lines(regions: list[tuple[Any, ...]], base: list[str], a: list[str], b: list[str], label_a: str,
                  label_b: str) -> Iterator[str]:
    """merge3's ``merge_lines(name_a, name_b, reprocess=True)`` over regions already computed."""
    newline = "\r\n" if a and a[0].endswith("\r\n") else "\n"  # merge3 follows a's first line
    for region in regions:
        what = region[0]
        if what == "unchanged":
            yield from base[region[1] : region[2]]
        elif what in ("a", "same"):
            yield from a[region[1] : region[2]]
        elif what == "b":
            yield from b[region[1] : region[2]]
        else:  # conflict
            _, _, _, ia, amatch, ib, bmatch = region
            yield f"<<<<<<< {label_a}{newline}"
            yield from a[ia:amatch]
            yield f"======={newline}"
            yield from b[ib:bmatch]
            yield f">>>>>>> {label_b}{newline}"


def _split(text: str) -> tuple[list[str], bool]:
    """Lines that all end in a newline, and whether ``text`` itself did.

    Every line gets its newline so a marker never lands on the end of the
    last line. Split on "\\n" only: str.splitlines also breaks at \\f, \\v and
    \\u2028, which are not line ends in markdown, and would put a marker mid-line.
    """
    lines = [line + "\n" for line in text.split("\n")]
    ends_with_newline = text.endswith("\n")
    if ends_with_newline or not text:
        lines.pop()  # the empty piece after the final newline (or of "")
    return lines, ends_with_newline


def _merge_set(base: set[str], a: set[str], b: set[str]) -> set[str]:
    """Kept on both sides, or added on either; a removal on either side wins."""
    return (a & b) | (a - base) | (b - base)


def _merge_scope(heads: Sequence[Version]) -> FieldProposal:
    scopes = sorted({head.scope for head in heads}, key=_scope_rank)
    if len(scopes) == 1:
        return FieldProposal(scopes[0], False, "same scope on every head")
    note = f"heads disagree ({', '.join(scopes)}): narrowest kept, widening is a human's choice"
    return FieldProposal(scopes[0], True, note)


def _scope_rank(scope: str) -> int:
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")
    return SCOPES.index(scope)


def _deletion(
    deleted: Sequence[Version],
    live: Sequence[Version],
    scope: FieldProposal,
    order: list[str],
    notes: list[str],
) -> MergeProposal:
    """Every head deleted, or the live ones kept the base document: delete."""
    why = "unchanged on the other heads" if live else "all heads deleted the item"
    fields = _clean_fields(deleted[-1], f"tombstone of the latest deleting head: {why}")
    return _proposal(fields, scope, order, notes + [f"deletion applies: {why}"])


def _delete_vs_edit(
    fields: dict[str, FieldProposal],
    deleted: Sequence[Version],
    live: Sequence[Version],
    scope: FieldProposal,
    order: list[str],
    notes: list[str],
) -> MergeProposal:
    """One side deleted, another edited: a human picks keep or delete."""
    who = ", ".join(_label(head) for head in deleted)
    note = f"deleted by {who} but edited by another head: keep or delete"
    fields = {**fields, "deleted": FieldProposal(False, True, note)}
    keep = {name: fields[name].value for name in DOCUMENT_FIELDS}
    outcomes = [
        {"choice": "keep", "document": keep},
        {"choice": "delete", "document": _document(deleted[-1].payload)},
    ]
    return _proposal(fields, scope, order, notes + [note], outcomes=outcomes)


def _clean_fields(head: Version, note: str) -> dict[str, FieldProposal]:
    document = _document(head.payload)
    return {name: FieldProposal(document[name], False, note) for name in DOCUMENT_FIELDS}


def _order_notes(live: Sequence[Version]) -> list[str]:
    if len(live) <= 2:
        return []
    gids = ", ".join(head.gid for head in live)
    return [f"{len(live)} heads merged pairwise in (created_at, gid) order: {gids}"]


def _document(payload: dict[str, Any]) -> dict[str, Any]:
    """The document fields of a payload, lists sorted so equal states compare equal."""
    return {
        "title": payload["title"],
        "markdown": payload["markdown"],
        "tags": sorted(payload["tags"]),
        "forked_from": sorted(payload["forked_from"]),
        "deleted": bool(payload["deleted"]),
    }


def _undeleted(document: dict[str, Any]) -> dict[str, Any]:
    return {**document, "deleted": False}


def _label(head: Version) -> str:
    return f"{head.author} ({head.origin}, {head.gid[:8]})"
