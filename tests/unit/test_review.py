"""The pure rules of conflict review: split time, leftover markers, resolution heads, linear walks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st
from merge3 import Merge3

from domain import history
from domain.errors import StaleHead
from domain.merge import Version, propose_merge
from domain.review import (
    UnresolvedConflict,
    check_heads,
    check_resolution,
    conflict_since,
    marker_lines,
)
from domain.transaction import narrowest_scope

# root -> a1 -> a2 (north's line) and root -> c1 -> c2 (south's line)
TWO_LINES = {"root": [], "a1": ["root"], "a2": ["a1"], "c1": ["root"], "c2": ["c1"]}
TIMES = {"root": "t0", "a1": "t1", "c1": "t2", "a2": "t3", "c2": "t4"}
LABEL = "alice@urn:domain:north.example.net (urn:domain:north.example.net, 0123abcd)"


def test_a_conflict_dates_from_the_later_of_the_two_lines_first_transactions() -> None:
    assert conflict_since(TWO_LINES, TIMES, ["a2", "c2"]) == "t2"


def test_the_split_time_does_not_move_when_a_line_grows() -> None:
    grown = {**TWO_LINES, "a3": ["a2"]}

    assert conflict_since(grown, {**TIMES, "a3": "t9"}, ["a3", "c2"]) == "t2"


def test_with_three_heads_the_earliest_pairwise_split_counts() -> None:
    three = {**TWO_LINES, "b1": ["a1"]}  # a1 splits again into a2 and b1, later

    assert conflict_since(three, {**TIMES, "b1": "t5"}, ["a2", "c2", "b1"]) == "t2"


def test_a_complete_marker_block_is_found_line_by_line() -> None:
    text = f"keep\n<<<<<<< {LABEL}\nmine\n=======\ntheirs\n>>>>>>> {LABEL}\nend\n"

    assert marker_lines(text) == [2, 4, 6]


def test_a_lone_labelled_marker_is_found_but_markdown_underlines_are_not() -> None:
    half = f"keep\n<<<<<<< {LABEL}\nmine\n"
    heading = "Title\n=======\n\n> quoted\n"

    assert marker_lines(half) == [2]
    assert marker_lines(heading) == []


def test_markers_in_a_crlf_text_are_found_too() -> None:
    text = f"keep\r\n<<<<<<< {LABEL}\r\nmine\r\n=======\r\ntheirs\r\n>>>>>>> {LABEL}\r\n"
    half = f"keep\r\n<<<<<<< {LABEL}\r\nmine\r\n"

    assert marker_lines(text) == [2, 4, 6]
    assert marker_lines(half) == [2]


def test_markers_are_refused_unless_accepted() -> None:
    doc = {"title": "t", "markdown": f"<<<<<<< {LABEL}\nx\n=======\ny\n>>>>>>> {LABEL}\n"}

    with pytest.raises(UnresolvedConflict) as refused:
        check_resolution(doc, accept_markers=False)
    check_resolution(doc, accept_markers=True)

    assert refused.value.status == 422
    assert refused.value.extra["markers"] == [{"field": "markdown", "line": n} for n in (1, 3, 5)]


def test_a_resolution_must_name_exactly_the_current_heads() -> None:
    check_heads("item", ["h1", "h2"], ["h2", "h1"])

    with pytest.raises(StaleHead) as missing:
        check_heads("item", ["h1", "h2", "h3"], ["h1", "h2"])
    with pytest.raises(StaleHead):
        check_heads("item", ["h1"], ["h1", "h2"])

    assert missing.value.heads == ["h1", "h2", "h3"]


def test_the_default_scope_of_a_resolution_is_the_narrowest() -> None:
    assert narrowest_scope(["PUBLIC", "TEAM", "NETWORK"]) == "TEAM"


class CountingParents(Mapping[str, Sequence[str]]):
    """A parent mapping that counts how often a transaction's parents are read."""

    def __init__(self, parents: dict[str, list[str]]) -> None:
        self.parents = parents
        self.reads = 0

    def __getitem__(self, gid: str) -> Sequence[str]:
        self.reads += 1
        return self.parents[gid]

    def __iter__(self) -> Iterator[str]:
        return iter(self.parents)

    def __len__(self) -> int:
        return len(self.parents)


@pytest.mark.parametrize("depth", [1_000, 10_000])
def test_merge_bases_read_each_transaction_a_bounded_number_of_times(depth: int) -> None:
    chain = {"0": []} | {str(i): [str(i - 1)] for i in range(1, depth)}
    # a criss-cross at the top, so the generation ranking runs too
    dag = chain | {"b": [str(depth - 1)], "c": [str(depth - 1)], "m1": ["b", "c"], "m2": ["c", "b"],
                   "x": ["m1"], "y": ["m2"]}
    counting = CountingParents(dag)

    base = history.merge_base(counting, ["x", "y"])

    assert base in {"b", "c"}
    assert counting.reads <= 10 * len(dag)  # linear: a few walks, each reading a transaction once


# Non-empty, so every text ends with a newline and only the regions are compared.
LINES = st.lists(st.sampled_from(["a\n", "b\n", "c\n", "d\n", "\n", "e\r\n"]), min_size=1, max_size=8)


@given(LINES, LINES, LINES)
def test_proposed_text_is_what_merge3_writes(base: list[str], north: list[str], south: list[str]) -> None:
    def version(gid: str, lines: list[str], author: str, created_at: str) -> Version:
        payload = {"title": "t", "markdown": "".join(lines), "tags": [], "forked_from": [], "deleted": False}
        return Version(gid, payload, f"{author}@urn:domain:x", "urn:domain:x", created_at, gid, "NETWORK")

    first, second = version("a" * 8, north, "ann", "1"), version("b" * 8, south, "bob", "2")

    proposed = propose_merge(version("0" * 8, base, "nia", "0"), [second, first]).fields["markdown"].value

    merged = Merge3(base, north, south).merge_lines(name_a="ann@urn:domain:x (urn:domain:x, aaaaaaaa)",
                                                    name_b="bob@urn:domain:x (urn:domain:x, bbbbbbbb)", reprocess=True)
    assert proposed == "".join(merged)
