"""An edit built ahead of its group commit (``domain/head_change.py``): the leader records the transaction built
ahead only when the edit's head is still a head with the state it was built from and the checks decide the terms
it was built on; otherwise it builds the edit itself or refuses it, as without building ahead (in-memory store)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from domain.application import NodeApplication
from domain.commands import EditTerms
from domain.errors import EntityNotFound, StaleHead
from domain.item import Item
from infrastructure.persistence.memory import memory_env
from tests.unit.test_receiving import HERE, NOW, fake_sign, fake_verify

ANN = f"ann@{HERE}"
KEPT, HIDDEN = "7a000000-0000-4000-8000-000000000001", "7a000000-0000-4000-8000-000000000002"  # tag gids


@pytest.fixture
def app() -> Iterator[NodeApplication]:
    signed: list[bytes] = []

    def sign(data: bytes) -> str:
        signed.append(data)
        return fake_sign(data)

    application = NodeApplication({**memory_env(), "AGGREGATE_CACHE_MAXSIZE": "100"}, node=HERE, signer=sign,
                                  verifier=fake_verify, clock=lambda: NOW)
    application.signed = signed  # type: ignore[attr-defined]
    yield application
    application.close()


def edit(app: NodeApplication, gid: str, parent: str, terms: EditTerms | None = None, **fields: Any) -> Any:
    app.entity(gid)  # read once: in the aggregate cache, as an item being edited is
    return app.item_edit(parent=parent, author=ANN, title=None, markdown=fields.get("markdown", "two\n"),
                         scope=None, owner_edits_only=None, terms=lambda: terms or EditTerms())


def test_the_edit_built_ahead_is_the_one_recorded_and_signed_once(app: NodeApplication) -> None:
    made = app.create_item(author=ANN, title="one", markdown="one\n")
    change = edit(app, made.entity_gid, made.gid)
    app.build_ahead(made.entity_gid, change, EditTerms())
    built = change._ahead[2]  # type: ignore[index]
    signatures = len(app.signed)  # type: ignore[attr-defined]

    receipt = app.run(made.entity_gid, Item, change)

    assert receipt.gid == built["gid"] and len(app.signed) == signatures  # type: ignore[attr-defined]
    assert app.transaction(receipt.gid)["signature"] == built["signature"]
    assert app.entity(made.entity_gid).heads == [built["gid"]]


def test_a_head_gone_meanwhile_is_stale_though_the_edit_was_built(app: NodeApplication) -> None:
    made = app.create_item(author=ANN, title="one", markdown="one\n")
    change = edit(app, made.entity_gid, made.gid)
    app.build_ahead(made.entity_gid, change, EditTerms())
    app.edit_item(made.entity_gid, parent=made.gid, author=ANN, markdown="other\n")  # the head moves on

    with pytest.raises(StaleHead):
        app.run(made.entity_gid, Item, change)
    assert app.entity(made.entity_gid).state["markdown"] == "other\n"


def test_other_terms_than_those_built_on_are_built_again(app: NodeApplication) -> None:
    made = app.create_item(author=ANN, title="one", markdown="one\n", tags=[KEPT])
    decided = EditTerms(None, [KEPT, HIDDEN])  # the checks keep a tag the editor could not name
    change = edit(app, made.entity_gid, made.gid, terms=decided)
    app.build_ahead(made.entity_gid, change, EditTerms(None, [KEPT]))  # built on the ordinary edit's terms

    receipt = app.run(made.entity_gid, Item, change)

    assert receipt.gid != change._ahead[2]["gid"]  # type: ignore[index]
    assert app.transaction(receipt.gid)["payload"]["tags"] == [KEPT, HIDDEN]


def test_checks_that_refuse_the_edit_refuse_the_one_built_ahead(app: NodeApplication) -> None:
    made = app.create_item(author=ANN, title="one", markdown="one\n")

    def refused() -> EditTerms:
        raise EntityNotFound(f"no item {made.entity_gid} on this node")

    change = app.item_edit(parent=made.gid, author=ANN, title=None, markdown="two\n", scope=None,
                           owner_edits_only=None, terms=refused)
    app.build_ahead(made.entity_gid, change, EditTerms())

    with pytest.raises(EntityNotFound):
        app.run(made.entity_gid, Item, change)
    assert app.entity(made.entity_gid).heads == [made.gid]


def test_nothing_is_built_ahead_for_an_uncached_aggregate_or_an_unknown_head(app: NodeApplication) -> None:
    made = app.create_item(author=ANN, title="one", markdown="one\n")
    unknown = edit(app, made.entity_gid, "11111111-1111-4111-8111-111111111111")
    app.build_ahead(made.entity_gid, unknown, EditTerms())
    app.repository.cache = None  # type: ignore[assignment]
    uncached = edit(app, made.entity_gid, made.gid)
    app.build_ahead(made.entity_gid, uncached, EditTerms())

    assert unknown._ahead is None and uncached._ahead is None
    assert app.run(made.entity_gid, Item, uncached).gid in app.entity(made.entity_gid).heads
