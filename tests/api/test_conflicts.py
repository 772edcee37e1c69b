"""Conflict review and resolution through the editor API, on hand-made histories (both stores).

Histories come from two signing peers (``tests/factory.py``) that share one
clock, so every transaction's ``created_at`` and so every merge order is
fixed; the node under test receives them as it would from the network.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from domain.transaction import signing_input
from tests.api.conftest import Api, is_problem
from tests.factory import SigningPeer, document, trust

TAG_X = "11111111-0000-4000-8000-000000000001"
TAG_Y = "22222222-0000-4000-8000-000000000002"
TAG_Z = "33333333-0000-4000-8000-000000000003"
BASE_MARKDOWN = "# Plan\n\nintro\n\nbody\n\noutro\n"


class Histories:
    """Two peers, north and south, whose transactions the node trusts and receives."""

    def __init__(self, api: Api) -> None:
        clock = itertools.count()
        self.node = api.node
        self.north = SigningPeer(host="north.example.net", _clock=clock)
        self.south = SigningPeer(host="south.example.net", _clock=clock)
        trust(self.node, self.north, self.south)

    def receive(self, *txs: dict[str, Any]) -> None:
        outcomes = self.node.app.receive(list(txs))
        assert [o.status for o in outcomes] == ["stored"] * len(txs), outcomes

    def item(self, markdown: str = BASE_MARKDOWN, *, title: str = "Plan", tags: list[str] | None = None,
             scope: str = "NETWORK") -> dict[str, Any]:
        tx = self.north.tx("item", None, "item.created", [], document(title, markdown, tags),
                           scope=scope, author="nia")
        self.receive(tx)
        return tx

    def delete(self, peer: SigningPeer, base: dict[str, Any], author: str) -> dict[str, Any]:
        payload = dict(base["payload"], deleted=True)
        return peer.tx("item", base["entity_gid"], "item.deleted", [base["gid"]], payload, scope=base["scope"],
                       author=author)


@pytest.fixture
def histories(api: Api) -> Histories:
    return Histories(api)


def review(api: Api, item: dict[str, Any], **token: Any) -> dict[str, Any]:
    response = api.get(f"/conflicts/{item['entity_gid']}", headers=api.auth(**token))
    assert response.status_code == 200, response.text
    return response.json()


def resolve(api: Api, item: dict[str, Any], heads: list[str], doc: dict[str, Any], *, name: str = "mia",
            role: str = "merge", **extra: Any) -> Any:
    body = {"heads": heads, "document": doc, **extra}
    return api.post(f"/conflicts/{item['entity_gid']}/resolve", json=body, headers=api.auth(name, role=role))


# --- review: proposals on hand-made histories -------------------------------------------------


def test_non_overlapping_markdown_edits_are_proposed_merged_cleanly(api: Api, histories: Histories) -> None:
    base = histories.item()
    north = histories.north.edit(base, markdown="# Plan\n\nintro by north\n\nbody\n\noutro\n", author="alice")
    south = histories.south.edit(base, markdown="# Plan\n\nintro\n\nbody\n\noutro by south\n", author="bob")
    histories.receive(north, south)

    body = review(api, base)

    proposal = body["proposal"]
    assert body["base"]["gid"] == base["gid"] and body["base"]["state"]["markdown"] == BASE_MARKDOWN
    assert [h["gid"] for h in body["heads"]] == [north["gid"], south["gid"]]
    assert [h["state"]["markdown"] for h in body["heads"]] == [north["payload"]["markdown"],
                                                               south["payload"]["markdown"]]
    assert proposal["document"]["markdown"] == "# Plan\n\nintro by north\n\nbody\n\noutro by south\n"
    assert proposal["fields"]["markdown"] == {"value": proposal["document"]["markdown"], "needs_human": False,
                                              "note": "merged cleanly"}
    assert not proposal["needs_human"] and not proposal["trivial"] and not proposal["pairwise"]
    assert not any(field["needs_human"] for field in proposal["fields"].values())


def test_overlapping_edits_are_marked_with_both_sides_labelled_by_author_and_origin(
        api: Api, histories: Histories) -> None:
    base = histories.item()
    north = histories.north.edit(base, title="North plan", markdown="# Plan\n\nintro\n\nnorth body\n\noutro\n",
                                 author="alice")
    south = histories.south.edit(base, title="South plan", markdown="# Plan\n\nintro\n\nsouth body\n\noutro\n",
                                 author="bob")
    histories.receive(north, south)

    fields = review(api, base)["proposal"]["fields"]

    alice = f"alice@{histories.north.name} ({histories.north.name}, {north['gid'][:8]})"
    bob = f"bob@{histories.south.name} ({histories.south.name}, {south['gid'][:8]})"
    assert fields["markdown"]["value"] == (f"# Plan\n\nintro\n\n<<<<<<< {alice}\nnorth body\n=======\nsouth body\n"
                                           f">>>>>>> {bob}\n\noutro\n")
    assert fields["title"]["value"] == f"<<<<<<< {alice}\nNorth plan\n=======\nSouth plan\n>>>>>>> {bob}"
    assert fields["markdown"]["needs_human"] and fields["title"]["needs_human"]
    assert not fields["tags"]["needs_human"] and not fields["scope"]["needs_human"]


def test_tags_merge_as_sets_keeping_additions_and_dropping_removals(api: Api, histories: Histories) -> None:
    base = histories.item(tags=[TAG_X, TAG_Y])
    north = histories.north.edit(base, tags=[TAG_X, TAG_Y, TAG_Z], author="alice")  # adds Z
    south = histories.south.edit(base, tags=[TAG_Y], author="bob")  # removes X, keeps Y

    histories.receive(north, south)
    tags = review(api, base)["proposal"]["fields"]["tags"]

    assert tags == {"value": [TAG_Y, TAG_Z], "needs_human": False, "note": "merged as sets against the base"}


def test_three_heads_are_merged_pairwise_in_a_deterministic_order_and_the_review_says_so(
        api: Api, histories: Histories) -> None:
    base = histories.item()
    first = histories.north.edit(base, markdown="# Plan\n\nintro 1\n\nbody\n\noutro\n", author="alice")
    second = histories.south.edit(base, markdown="# Plan\n\nintro\n\nbody 2\n\noutro\n", author="bob")
    third = histories.north.edit(base, markdown="# Plan\n\nintro\n\nbody\n\noutro 3\n", author="carol")
    histories.receive(third, first, second)

    proposal = review(api, base)["proposal"]

    assert proposal["pairwise"] is True
    assert proposal["order"] == [first["gid"], second["gid"], third["gid"]]
    assert any("merged pairwise" in note for note in proposal["notes"])
    assert proposal["document"]["markdown"] == "# Plan\n\nintro 1\n\nbody 2\n\noutro 3\n"
    assert not proposal["needs_human"]


def test_criss_cross_history_lists_both_merge_bases_and_uses_the_documented_one(
        api: Api, histories: Histories) -> None:
    root = histories.item("a\nb\nc\n")
    left = histories.north.edit(root, markdown="A\nb\nc\n", author="alice")
    right = histories.south.edit(root, markdown="a\nb\nC\n", author="bob")
    m1 = histories.north.merge([left, right], "A\nb\nC\n", author="alice")
    m2 = histories.south.merge([right, left], "A\nb\nC\n", author="bob")
    x = histories.north.edit(m1, markdown="A\nb north\nC\n", author="alice")
    y = histories.south.edit(m2, markdown="A\nb\nC\nsouth\n", author="bob")
    histories.receive(left, right, m1, m2, x, y)

    body = review(api, root)

    assert body["merge_bases"] == sorted([left["gid"], right["gid"]])
    assert body["base"]["gid"] == min(left["gid"], right["gid"])  # equal generations: the smallest gid
    assert "greatest generation" in body["base_rule"]
    assert [h["gid"] for h in body["heads"]] == [x["gid"], y["gid"]]


def test_a_deleted_head_against_an_edited_head_offers_keep_and_delete(api: Api, histories: Histories) -> None:
    base = histories.item()
    deleted = histories.delete(histories.north, base, "alice")
    edited = histories.south.edit(base, markdown=BASE_MARKDOWN + "more\n", author="bob")
    histories.receive(deleted, edited)

    proposal = review(api, base)["proposal"]

    assert proposal["delete_vs_edit"] is True and proposal["needs_human"] is True
    assert proposal["fields"]["deleted"]["needs_human"] is True
    assert "deleted by alice@" in proposal["fields"]["deleted"]["note"]
    outcomes = {o["choice"]: o["document"] for o in proposal["outcomes"]}
    assert outcomes["keep"] == proposal["document"]
    assert outcomes["keep"]["markdown"] == BASE_MARKDOWN + "more\n" and outcomes["keep"]["deleted"] is False
    assert outcomes["delete"]["deleted"] is True


def test_heads_with_equal_checksums_are_a_trivial_conflict_proposing_that_state(
        api: Api, histories: Histories) -> None:
    base = histories.item()
    north = histories.north.edit(base, title="Same plan", author="alice")
    south = histories.south.edit(base, title="Same plan", author="bob")
    histories.receive(north, south)

    proposal = review(api, base)["proposal"]

    assert north["checksum"] == south["checksum"]
    assert proposal["trivial"] is True and proposal["needs_human"] is False
    assert proposal["document"] == north["payload"]


# --- list and visibility ----------------------------------------------------------------------


def test_the_list_shows_conflicts_oldest_first_with_title_heads_authors_origins_and_since(
        api: Api, histories: Histories) -> None:
    older_item, newer_item = histories.item(title="Created first"), histories.item(title="Created second")
    early = [histories.north.edit(newer_item, markdown="n\n", author="alice"),
             histories.south.edit(newer_item, markdown="s\n", author="bob")]
    late = [histories.north.edit(older_item, markdown="n\n", author="alice"),
            histories.south.edit(older_item, markdown="s\n", author="bob")]
    histories.receive(*late, *early)

    response = api.get("/conflicts", headers=api.auth())

    body = response.json()
    assert response.status_code == 200 and body["next"] is None
    assert [c["item"] for c in body["conflicts"]] == [newer_item["entity_gid"], older_item["entity_gid"]]
    first = body["conflicts"][0]
    assert first["title"] == "Created second" and first["since"] == early[1]["created_at"]
    assert first["heads"] == [{"gid": tx["gid"], "kind": "item.edited", "author": tx["author"], "origin": tx["origin"],
                               "created_at": tx["created_at"], "checksum": tx["checksum"]} for tx in early]


def test_the_list_pages_with_a_cursor(api: Api, histories: Histories) -> None:
    items = [histories.item(title=f"item {i}") for i in range(3)]
    for item in items:
        histories.receive(histories.north.edit(item, markdown="n\n"), histories.south.edit(item, markdown="s\n"))

    first = api.get("/conflicts?limit=2", headers=api.auth()).json()
    second = api.get(f"/conflicts?limit=2&cursor={first['next']}", headers=api.auth()).json()

    assert [c["item"] for c in first["conflicts"] + second["conflicts"]] == [i["entity_gid"] for i in items]
    assert second["next"] is None


def test_conflicts_on_items_the_editor_may_not_see_are_absent_and_not_found(api: Api, histories: Histories) -> None:
    hidden = histories.item(scope="OWNER")
    heads = [histories.north.edit(hidden, markdown="n\n"), histories.north.edit(hidden, markdown="s\n")]
    histories.receive(*heads)

    listed = api.get("/conflicts", headers=api.auth("ann")).json()["conflicts"]
    reviewed = api.get(f"/conflicts/{hidden['entity_gid']}", headers=api.auth("ann"))
    resolved = resolve(api, hidden, [h["gid"] for h in heads], document("Plan", "x\n"))
    by_admin = api.get("/conflicts", headers=api.auth("root", role="admin")).json()["conflicts"]

    assert listed == []
    assert is_problem(reviewed, 404) and "no item" in reviewed.json()["detail"]
    assert is_problem(resolved, 404)
    assert [c["item"] for c in by_admin] == [hidden["entity_gid"]]


def test_an_item_with_one_head_has_no_conflict_to_review(api: Api, histories: Histories) -> None:
    item = histories.item()

    response = api.get(f"/conflicts/{item['entity_gid']}", headers=api.auth())

    assert is_problem(response, 404) and response.json()["type"].endswith("no-conflict")


def test_conflict_operations_are_described_in_openapi_with_problem_responses(api: Api) -> None:
    paths = api.get("/openapi.json").json()["paths"]

    operations = {(path, method): op for path, ops in paths.items() if path.startswith("/conflicts")
                  for method, op in ops.items()}

    assert set(operations) == {("/conflicts", "get"), ("/conflicts/{item_gid}", "get"),
                               ("/conflicts/{item_gid}/resolve", "post")}
    resolve_op = operations[("/conflicts/{item_gid}/resolve", "post")]
    assert {"401", "403", "404", "409", "422"} <= set(resolve_op["responses"])
    assert all(op.get("description") for op in operations.values())


# --- resolve ----------------------------------------------------------------------------------


def test_a_merge_editor_resolves_with_a_signed_merge_of_the_heads_and_the_conflict_closes(
        api: Api, histories: Histories) -> None:
    base = histories.item()
    north = histories.north.edit(base, markdown="# Plan\n\nintro by north\n\nbody\n\noutro\n", author="alice")
    south = histories.south.edit(base, markdown="# Plan\n\nintro\n\nbody\n\noutro by south\n", author="bob")
    histories.receive(north, south)
    proposal = review(api, base, role="editor")["proposal"]

    response = resolve(api, base, [south["gid"], north["gid"]], proposal["document"])

    assert response.status_code == 201, response.text
    body = response.json()
    tx = api.node.app.transaction(body["transaction"])
    assert tx["kind"] == "item.merged" and tx["parents"] == sorted([north["gid"], south["gid"]])
    assert tx["author"] == f"mia@{api.node.name}" and tx["payload"] == proposal["document"]
    api.node.keys.verify(tx, signing_input(tx))  # signed with the node's key, like any transaction
    assert response.headers["Location"] == f"/items/{base['entity_gid']}"
    assert api.get("/conflicts", headers=api.auth()).json()["conflicts"] == []
    item = api.get(f"/items/{base['entity_gid']}", headers=api.auth()).json()
    assert item["heads"] == [tx["gid"]] and item["markdown"] == proposal["document"]["markdown"]


def test_an_admin_may_resolve_too(api: Api, histories: Histories) -> None:
    base = histories.item()
    heads = [histories.north.edit(base, markdown="n\n"), histories.south.edit(base, markdown="s\n")]
    histories.receive(*heads)

    response = resolve(api, base, [h["gid"] for h in heads], document("Plan", "merged\n"), name="root", role="admin")

    assert response.status_code == 201, response.text


def test_resolving_the_delete_outcome_stores_a_tombstone_merge(api: Api, histories: Histories) -> None:
    base = histories.item()
    deleted = histories.delete(histories.north, base, "alice")
    edited = histories.south.edit(base, markdown=BASE_MARKDOWN + "more\n", author="bob")
    histories.receive(deleted, edited)
    outcomes = {o["choice"]: o["document"] for o in review(api, base)["proposal"]["outcomes"]}

    response = resolve(api, base, [deleted["gid"], edited["gid"]], outcomes["delete"])

    assert response.status_code == 201, response.text
    assert response.json()["state"]["deleted"] is True
    assert api.get(f"/items/{base['entity_gid']}", headers=api.auth()).status_code == 404


def test_a_resolution_without_scope_takes_the_narrowest_scope_of_the_heads(api: Api, histories: Histories) -> None:
    base = histories.item()
    wide = histories.north.edit(base, markdown="n\n", scope="PUBLIC")
    narrow = histories.north.edit(base, markdown="s\n", scope="DOMAIN")  # only the owner changes scope
    histories.receive(wide, narrow)

    response = resolve(api, base, [wide["gid"], narrow["gid"]], document("Plan", "merged\n"))

    assert response.status_code == 201 and response.json()["scope"] == "DOMAIN"


@pytest.mark.parametrize("arrival", ["a third concurrent head", "an edit on top of a head"])
def test_resolving_with_stale_heads_is_409_with_the_current_heads_and_stores_nothing(
        api: Api, histories: Histories, arrival: str) -> None:
    base = histories.item()
    north, south = histories.north.edit(base, markdown="n\n"), histories.south.edit(base, markdown="s\n")
    histories.receive(north, south)
    proposal = review(api, base)["proposal"]
    late = histories.north.edit(base if arrival == "a third concurrent head" else north, markdown="late\n")
    histories.receive(late)  # arrives after the review
    stored = api.outbox()

    response = resolve(api, base, [north["gid"], south["gid"]], proposal["document"] | {"markdown": "m\n"})

    assert is_problem(response, 409)
    assert response.json()["heads"] == api.node.app.entity(base["entity_gid"]).heads
    assert late["gid"] in response.json()["heads"]
    assert api.outbox() == stored


def test_resolving_with_leftover_markers_is_422_and_stores_nothing(api: Api, histories: Histories) -> None:
    base = histories.item()
    north = histories.north.edit(base, markdown="# Plan\n\nintro\n\nnorth\n\noutro\n")
    south = histories.south.edit(base, markdown="# Plan\n\nintro\n\nsouth\n\noutro\n")
    histories.receive(north, south)
    proposal = review(api, base)["proposal"]
    stored = api.outbox()

    response = resolve(api, base, [north["gid"], south["gid"]], proposal["document"])

    assert is_problem(response, 422) and response.json()["type"].endswith("unresolved-conflict")
    assert {"field": "markdown", "line": 5} in response.json()["markers"]
    assert api.outbox() == stored
    assert len(api.get("/conflicts", headers=api.auth()).json()["conflicts"]) == 1


def test_a_half_removed_marker_block_is_still_refused(api: Api, histories: Histories) -> None:
    base = histories.item()
    north = histories.north.edit(base, markdown="# Plan\n\nintro\n\nnorth\n\noutro\n")
    south = histories.south.edit(base, markdown="# Plan\n\nintro\n\nsouth\n\noutro\n")
    histories.receive(north, south)
    marked = review(api, base)["proposal"]["document"]
    half = "\n".join(line for line in marked["markdown"].split("\n") if not line.startswith(("=======", "south")))
    stored = api.outbox()

    response = resolve(api, base, [north["gid"], south["gid"]], marked | {"markdown": half})

    assert is_problem(response, 422)
    assert api.outbox() == stored


def test_markers_are_stored_when_the_merge_editor_accepts_them(api: Api, histories: Histories) -> None:
    base = histories.item()
    north = histories.north.edit(base, markdown="# Plan\n\nintro\n\nnorth\n\noutro\n")
    south = histories.south.edit(base, markdown="# Plan\n\nintro\n\nsouth\n\noutro\n")
    histories.receive(north, south)
    proposal = review(api, base)["proposal"]

    response = resolve(api, base, [north["gid"], south["gid"]], proposal["document"], accept_markers=True)

    assert response.status_code == 201, response.text
    assert response.json()["state"]["markdown"] == proposal["document"]["markdown"]


def test_an_editor_without_the_merge_role_may_review_but_not_resolve(api: Api, histories: Histories) -> None:
    base = histories.item()
    north, south = histories.north.edit(base, markdown="n\n"), histories.south.edit(base, markdown="s\n")
    histories.receive(north, south)
    proposal = review(api, base, name="ann", role="editor")["proposal"]
    stored = api.outbox()

    response = resolve(api, base, [north["gid"], south["gid"]], proposal["document"] | {"markdown": "m\n"},
                       name="ann", role="editor")

    assert is_problem(response, 403)
    assert api.outbox() == stored


def test_a_resolution_must_be_a_complete_document(api: Api, histories: Histories) -> None:
    base = histories.item()
    north, south = histories.north.edit(base, markdown="n\n"), histories.south.edit(base, markdown="s\n")
    histories.receive(north, south)
    stored = api.outbox()

    response = resolve(api, base, [north["gid"], south["gid"]], {"title": "t", "markdown": "m\n"})

    assert is_problem(response, 422) and "document.tags" in response.json()["detail"]
    assert api.outbox() == stored
