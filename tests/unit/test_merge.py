"""Three-way merge proposals: text, tags, forks, scope, deletion, many heads."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.merge import MergeProposal, Version, has_conflict_markers, propose_merge

ALICE = "alice@urn:domain:north.example.org"
BOB = "bob@urn:domain:south.example.org"
CAROL = "carol@urn:domain:east.example.org"
GIDS = {
    "base": "00000000-0000-4000-8000-000000000000",
    ALICE: "aaaaaaaa-0000-4000-8000-000000000001",
    BOB: "bbbbbbbb-0000-4000-8000-000000000002",
    CAROL: "cccccccc-0000-4000-8000-000000000003",
}
TAG_X = "11111111-0000-4000-8000-000000000001"
TAG_Y = "22222222-0000-4000-8000-000000000002"
TAG_Z = "33333333-0000-4000-8000-000000000003"
BASE_MARKDOWN = "# Plan\n\nintro\n\nbody\n\noutro\n"


def doc(**changes: Any) -> dict[str, Any]:
    document = {
        "title": "Plan",
        "markdown": BASE_MARKDOWN,
        "tags": [TAG_X],
        "forked_from": [],
        "deleted": False,
    }
    return {**document, **changes}


def version(
    author: str,
    payload: dict[str, Any],
    created_at: str = "2024-05-01T10:00:00Z",
    scope: str = "NETWORK",
    gid: str | None = None,
) -> Version:
    checksum = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
    return Version(
        gid=gid or GIDS[author],
        payload=payload,
        author=author,
        origin=author.split("@", 1)[1],
        created_at=created_at,
        checksum=checksum,
        scope=scope,
    )


BASE = version("base@urn:domain:north.example.org", doc(), gid=GIDS["base"])


def test_non_overlapping_markdown_edits_merge_cleanly() -> None:
    alice = version(ALICE, doc(markdown="# Plan\n\nintro by alice\n\nbody\n\noutro\n"))
    bob = version(BOB, doc(markdown="# Plan\n\nintro\n\nbody\n\noutro by bob\n"))

    proposal = propose_merge(BASE, [alice, bob])

    assert proposal.fields["markdown"].value == "# Plan\n\nintro by alice\n\nbody\n\noutro by bob\n"
    assert not proposal.needs_human
    assert not proposal.trivial


def test_overlapping_edits_are_marked_and_labelled_with_the_authors() -> None:
    alice = version(ALICE, doc(markdown="# Plan\n\nintro\n\nalice's body\n\noutro\n"))
    bob = version(BOB, doc(markdown="# Plan\n\nintro\n\nbob's body\n\noutro\n"))

    proposal = propose_merge(BASE, [bob, alice])

    markdown = proposal.fields["markdown"]
    assert markdown.needs_human and proposal.needs_human
    assert markdown.value == (
        "# Plan\n\nintro\n\n"
        "<<<<<<< alice@urn:domain:north.example.org (urn:domain:north.example.org, aaaaaaaa)\n"
        "alice's body\n"
        "=======\n"
        "bob's body\n"
        ">>>>>>> bob@urn:domain:south.example.org (urn:domain:south.example.org, bbbbbbbb)\n"
        "\noutro\n"
    )
    assert has_conflict_markers(markdown.value)
    assert "1 conflicting region" in markdown.note


def test_title_conflict_needs_a_human_but_clean_markdown_does_not() -> None:
    alice = version(ALICE, doc(title="Plan A"))
    bob = version(BOB, doc(title="Plan B", markdown=BASE_MARKDOWN + "more\n"))

    proposal = propose_merge(BASE, [alice, bob])

    assert proposal.fields["title"].needs_human
    assert not proposal.fields["markdown"].needs_human
    assert proposal.fields["markdown"].value == BASE_MARKDOWN + "more\n"


def test_text_without_trailing_newline_merges_sanely() -> None:
    base = version("base@urn:domain:n", doc(markdown="one\ntwo\nthree"), gid=GIDS["base"])
    alice = version(ALICE, doc(markdown="ONE\ntwo\nthree"))
    bob = version(BOB, doc(markdown="one\ntwo\nTHREE"))

    proposal = propose_merge(base, [alice, bob])

    assert proposal.fields["markdown"].value == "ONE\ntwo\nTHREE"
    assert not proposal.needs_human


def test_conflict_on_a_last_line_without_newline_keeps_markers_on_their_own_lines() -> None:
    base = version("base@urn:domain:n", doc(markdown="one\ntwo"), gid=GIDS["base"])
    alice = version(ALICE, doc(markdown="one\nalice"))
    bob = version(BOB, doc(markdown="one\nbob"))

    value = propose_merge(base, [alice, bob]).fields["markdown"].value

    lines = value.split("\n")
    assert lines[0] == "one"
    assert lines[1].startswith("<<<<<<< ") and lines[2] == "alice" and lines[3] == "======="
    assert lines[4] == "bob" and lines[5].startswith(">>>>>>> ")


def test_adding_a_final_newline_on_one_side_is_kept() -> None:
    base = version("base@urn:domain:n", doc(markdown="one\ntwo"), gid=GIDS["base"])
    alice = version(ALICE, doc(markdown="one\ntwo\n"))
    bob = version(BOB, doc(markdown="ONE\ntwo"))

    proposal = propose_merge(base, [alice, bob])

    assert proposal.fields["markdown"].value == "ONE\ntwo\n"
    assert not proposal.needs_human


def test_tags_merge_as_sets_keeping_additions_and_removals() -> None:
    alice = version(ALICE, doc(tags=[TAG_X, TAG_Y]))  # adds Y
    bob = version(BOB, doc(tags=[]))  # removes X

    proposal = propose_merge(BASE, [alice, bob])

    assert proposal.fields["tags"].value == [TAG_Y]
    assert not proposal.needs_human


def test_forked_from_is_the_union_of_the_heads() -> None:
    alice = version(ALICE, doc(forked_from=["item-b"]))
    bob = version(BOB, doc(forked_from=["item-a"]))

    proposal = propose_merge(BASE, [alice, bob])

    assert proposal.fields["forked_from"].value == ["item-a", "item-b"]


def test_differing_scopes_keep_the_narrowest_and_need_a_human() -> None:
    alice = version(ALICE, doc(title="Plan A"), scope="PUBLIC")
    bob = version(BOB, doc(), scope="DOMAIN")

    proposal = propose_merge(BASE, [alice, bob])

    assert proposal.fields["scope"].value == "DOMAIN"
    assert proposal.fields["scope"].needs_human
    assert proposal.needs_human


def test_three_heads_merge_pairwise_in_created_at_order() -> None:
    late = version(ALICE, doc(markdown="# Plan\n\nintro\n\nbody\n\noutro by alice\n"), "2024-05-03")
    first = version(BOB, doc(markdown="# Plan\n\nintro by bob\n\nbody\n\noutro\n"), "2024-05-01")
    middle = version(
        CAROL, doc(markdown="# Plan\n\nintro\n\nbody by carol\n\noutro\n"), "2024-05-02"
    )

    proposal = propose_merge(BASE, [late, first, middle])

    assert proposal.order == [GIDS[BOB], GIDS[CAROL], GIDS[ALICE]]
    assert proposal.fields["markdown"].value == (
        "# Plan\n\nintro by bob\n\nbody by carol\n\noutro by alice\n"
    )
    assert not proposal.needs_human
    assert any("pairwise" in note for note in proposal.notes)


def test_three_heads_with_a_clash_mark_the_accumulated_side() -> None:
    bob = version(BOB, doc(title="Bob's plan"), "2024-05-01")
    carol = version(CAROL, doc(tags=[TAG_Z]), "2024-05-02")
    alice = version(ALICE, doc(title="Alice's plan"), "2024-05-03")

    proposal = propose_merge(BASE, [alice, carol, bob])

    title = proposal.fields["title"]
    assert title.needs_human
    assert title.value.startswith("<<<<<<< " + BOB)
    assert f"+ {CAROL}" in title.value.splitlines()[0]
    assert proposal.fields["tags"].value == [TAG_Z]


def test_without_a_base_every_differing_line_conflicts() -> None:
    alice = version(ALICE, doc(markdown="shared\nalice\n"))
    bob = version(BOB, doc(markdown="shared\nbob\n"))

    proposal = propose_merge(None, [alice, bob])

    markdown = proposal.fields["markdown"].value
    assert markdown.startswith("shared\n<<<<<<< ")
    assert proposal.fields["markdown"].needs_human
    assert not proposal.fields["title"].needs_human  # equal titles agree
    assert any("no common ancestor" in note for note in proposal.notes)


def test_delete_against_edit_needs_a_human_and_offers_both_outcomes() -> None:
    deleter = version(ALICE, doc(deleted=True))
    editor = version(BOB, doc(markdown=BASE_MARKDOWN + "new line\n"))

    proposal = propose_merge(BASE, [deleter, editor])

    assert proposal.needs_human
    assert proposal.fields["deleted"].value is False
    assert proposal.fields["deleted"].needs_human
    assert proposal.fields["markdown"].value == BASE_MARKDOWN + "new line\n"
    assert proposal.outcomes is not None
    choices = {outcome["choice"]: outcome["document"] for outcome in proposal.outcomes}
    assert choices["keep"] == proposal.document
    assert choices["delete"]["deleted"] is True


def test_delete_against_an_unchanged_head_deletes_cleanly() -> None:
    deleter = version(ALICE, doc(deleted=True))
    untouched = version(BOB, doc(), scope="NETWORK")

    proposal = propose_merge(BASE, [deleter, untouched])

    assert proposal.fields["deleted"].value is True
    assert not proposal.needs_human
    assert proposal.outcomes is None


def test_both_heads_deleted_is_a_clean_deletion() -> None:
    alice = version(ALICE, doc(deleted=True, title="gone"), "2024-05-01")
    bob = version(BOB, doc(deleted=True), "2024-05-02")

    proposal = propose_merge(BASE, [alice, bob])

    assert proposal.fields["deleted"].value is True
    assert proposal.fields["title"].value == "Plan"  # the latest tombstone
    assert not proposal.needs_human


def test_equal_checksums_are_a_trivial_conflict() -> None:
    alice = version(ALICE, doc(title="Same"))
    bob = version(BOB, doc(title="Same"))

    proposal = propose_merge(BASE, [alice, bob])

    assert proposal.trivial
    assert not proposal.needs_human
    assert proposal.document == doc(title="Same")


def test_unknown_scope_is_refused() -> None:
    with pytest.raises(ValueError, match="scope"):
        propose_merge(BASE, [version(ALICE, doc(), scope="WORLD"), version(BOB, doc())])


def test_conflict_markers_are_recognised_only_as_a_complete_block() -> None:
    assert has_conflict_markers("a\n<<<<<<< x\nb\n=======\nc\n>>>>>>> y\n")
    assert not has_conflict_markers("a\n=======\nb\n")
    assert not has_conflict_markers("use <<<<<<< inline, then ======= and >>>>>>>")


POOL = [
    version(ALICE, doc(title="A", tags=[TAG_Y]), "2024-05-01", "PUBLIC"),
    version(BOB, doc(markdown="# Plan\n\nintro\n\nbob\n\noutro\n"), "2024-05-01", "TEAM"),
    version(CAROL, doc(markdown="# Plan\n\nintro\n\ncarol\n\noutro\n", tags=[]), "2024-05-02"),
    version(ALICE, doc(deleted=True), "2024-05-03", gid="dddddddd-0000-4000-8000-000000000004"),
    version(
        BOB, doc(forked_from=["f2", "f1"]), "2024-04-30", gid="eeeeeeee-0000-4000-8000-000000000005"
    ),
]


@given(st.lists(st.sampled_from(range(len(POOL))), min_size=2, max_size=5, unique=True), st.data())
def test_proposal_does_not_depend_on_the_order_of_the_heads(
    picked: list[int], data: st.DataObject
) -> None:
    heads = [POOL[i] for i in picked]
    shuffled = data.draw(st.permutations(heads))

    first: MergeProposal = propose_merge(BASE, heads)
    second = propose_merge(BASE, shuffled)

    assert first == second
