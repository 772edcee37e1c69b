"""The parent DAG: heads, ancestry, merge bases, order and cycles."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.history import (
    ancestors,
    check_acyclic,
    find_cycle,
    heads,
    is_ancestor,
    merge_base,
    merge_bases,
    topological_order,
)

LINEAR = {"a": [], "b": ["a"], "c": ["b"], "d": ["c"]}
# a -> b, then b splits into c and d
SPLIT = {"a": [], "b": ["a"], "c": ["b"], "d": ["b"]}
# a splits into b and c; m1 and m2 each merge b and c (criss-cross); x and y build on
# them, so x and y have two lowest common ancestors: b and c
CRISS_CROSS = {
    "a": [],
    "b": ["a"],
    "c": ["a"],
    "m1": ["b", "c"],
    "m2": ["c", "b"],
    "x": ["m1"],
    "y": ["m2"],
}


def test_linear_chain_has_one_head_and_its_tip_descends_from_all() -> None:
    result = heads(LINEAR)

    assert result == ["d"]
    assert ancestors(LINEAR, "d") == {"a", "b", "c", "d"}
    assert is_ancestor(LINEAR, "a", "d")
    assert not is_ancestor(LINEAR, "d", "a")


def test_a_transaction_is_its_own_ancestor() -> None:
    assert is_ancestor(LINEAR, "c", "c")
    assert ancestors(LINEAR, "a") == {"a"}


def test_simple_split_has_two_heads_and_the_split_point_as_base() -> None:
    split_heads = heads(SPLIT)

    bases = merge_bases(SPLIT, split_heads)

    assert split_heads == ["c", "d"]
    assert bases == ["b"]
    assert merge_base(SPLIT, split_heads) == "b"


def test_merge_base_of_a_head_and_its_ancestor_is_the_ancestor() -> None:
    assert merge_bases(LINEAR, ["d", "b"]) == ["b"]


def test_merge_base_of_one_head_is_itself() -> None:
    assert merge_base(LINEAR, ["c"]) == "c"


def test_merge_of_the_heads_removes_the_conflict() -> None:
    merged = {**SPLIT, "m": ["c", "d"]}

    assert heads(merged) == ["m"]


def test_criss_cross_history_has_two_merge_bases_and_picks_one_deterministically() -> None:
    bases = merge_bases(CRISS_CROSS, ["x", "y"])

    picked = merge_base(CRISS_CROSS, ["y", "x"])

    assert bases == ["b", "c"]
    assert picked == "b"  # same generation: the smallest gid


def test_merge_base_prefers_the_deeper_base_over_the_smaller_gid() -> None:
    # "z" is deeper than "b" (z descends from c); both are lowest common ancestors.
    parents = {
        "a": [],
        "b": ["a"],
        "c": ["a"],
        "z": ["c"],
        "m1": ["b", "z"],
        "m2": ["b", "z"],
    }

    assert merge_bases(parents, ["m1", "m2"]) == ["b", "z"]
    assert merge_base(parents, ["m1", "m2"]) == "z"


def test_independent_roots_have_no_merge_base() -> None:
    parents = {"r1": [], "r2": [], "a": ["r1"], "b": ["r2"]}

    assert merge_bases(parents, ["a", "b"]) == []
    assert merge_base(parents, ["a", "b"]) is None


def test_three_heads_share_the_lowest_ancestor_common_to_all() -> None:
    # a - b - c - d and d splits into e, f; g splits off at b
    parents = {"a": [], "b": ["a"], "c": ["b"], "d": ["c"], "e": ["d"], "f": ["d"], "g": ["b"]}

    assert heads(parents) == ["e", "f", "g"]
    assert merge_bases(parents, ["e", "f"]) == ["d"]
    assert merge_bases(parents, ["g", "e", "f"]) == ["b"]


def test_missing_parent_counts_as_a_root() -> None:
    parents = {"b": ["a"], "c": ["a"]}  # "a" not fetched yet

    assert heads(parents) == ["b", "c"]
    assert merge_base(parents, ["b", "c"]) == "a"
    assert topological_order(parents) == ["a", "b", "c"]


def test_unknown_head_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown"):
        merge_bases(LINEAR, ["d", "nope"])


def test_topological_order_puts_parents_first_and_breaks_ties_by_gid() -> None:
    assert topological_order(CRISS_CROSS) == ["a", "b", "c", "m1", "m2", "x", "y"]


def test_long_history_with_splits_near_root_and_tip_finds_its_bases() -> None:
    chain = [f"t{i:04d}" for i in range(1000)]
    parents: dict[str, list[str]] = {chain[0]: []}
    parents.update({gid: [chain[i]] for i, gid in enumerate(chain[1:])})
    parents["near-root"] = [chain[1]]
    parents["near-tip"] = [chain[995]]

    tip_base = merge_base(parents, ["near-tip", chain[-1]])
    all_base = merge_base(parents, [chain[-1], "near-root", "near-tip"])

    assert len(parents) == 1002
    assert heads(parents) == sorted([chain[-1], "near-root", "near-tip"])
    assert tip_base == chain[995]
    assert all_base == chain[1]


def test_self_parenting_is_refused() -> None:
    with pytest.raises(ValueError, match="itself"):
        check_acyclic({"a": [], "b": ["b", "a"]})


def test_cycle_is_found_and_refused() -> None:
    parents = {"a": [], "b": ["a", "d"], "c": ["b"], "d": ["c"]}

    cycle = find_cycle(parents)

    assert cycle == ["b", "d", "c", "b"]
    with pytest.raises(ValueError, match="cycle"):
        check_acyclic(parents)
    with pytest.raises(ValueError, match="cycle"):
        topological_order(parents)


def test_acyclic_history_passes_the_check() -> None:
    check_acyclic(CRISS_CROSS)

    assert find_cycle(CRISS_CROSS) is None


@given(st.randoms(use_true_random=False))
def test_results_do_not_depend_on_dict_parent_or_head_order(rnd: random.Random) -> None:
    items = list(CRISS_CROSS.items())
    rnd.shuffle(items)
    shuffled = {gid: rnd.sample(list(ps), len(ps)) for gid, ps in items}
    wanted = ["x", "y"]
    rnd.shuffle(wanted)

    assert heads(shuffled) == heads(CRISS_CROSS)
    assert merge_bases(shuffled, wanted) == ["b", "c"]
    assert merge_base(shuffled, wanted) == "b"
    assert topological_order(shuffled) == topological_order(CRISS_CROSS)
    assert find_cycle(shuffled) is None
