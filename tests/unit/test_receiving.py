"""The receive rules without a database: the pure triage, and the application on the in-memory store."""

from __future__ import annotations

import base64
import hashlib
import itertools
import uuid
from typing import Any

import pytest

from domain import receiving
from domain.application import NodeApplication
from domain.errors import InvalidSignature
from domain.transaction import CREATION_KINDS, checksum, owned_entity_gid, signing_input
from infrastructure.persistence.memory import MemoryRecorder, memory_env

NOW = "2026-06-01T12:00:00Z"
HERE = "urn:domain:a.example.org"
THERE = "urn:domain:b.example.net"
_ticks = itertools.count()


def fake_sign(data: bytes) -> str:
    """A JWS-shaped stand-in for a signature: the digest of what is signed (the verifier port's fake)."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"eyJhbGciOiJub25lIn0..{digest}"


def fake_verify(tx: dict[str, Any], signed: bytes) -> None:
    if tx["signature"] != fake_sign(signed):
        raise InvalidSignature(f"signature of {tx['gid']} does not match")


def tx(entity_gid: str, kind: str, parents: list[str], *, markdown: str = "text\n", origin: str = THERE,
       entity: str = "item", payload: dict[str, Any] | None = None) -> dict[str, Any]:
    if payload is None:
        payload = {"title": "t", "markdown": markdown, "tags": [], "forked_from": [], "deleted": False}
    gid = str(uuid.uuid4())
    if kind in CREATION_KINDS:  # a creation mints its owner-bound entity gid
        entity_gid = owned_entity_gid(origin, gid)
    made = {
        "gid": gid, "entity": entity, "entity_gid": entity_gid, "kind": kind,
        "parents": parents, "origin": origin, "author": f"bob@{origin}",
        "created_at": f"2026-05-01T00:00:{next(_ticks) % 60:02d}Z", "scope": "NETWORK",
        "payload": payload, "checksum": checksum(payload),
    }
    made["signature"] = fake_sign(signing_input(made))
    return made


def history(length: int) -> list[dict[str, Any]]:
    """An item's creation and ``length - 1`` edits, each on the one before."""
    txs = [tx("", "item.created", [])]
    item = txs[0]["entity_gid"]
    for i in range(1, length):
        txs.append(tx(item, "item.edited", [txs[-1]["gid"]], markdown=f"edit {i}\n"))
    return txs


def triage(batch: list[Any], stored: dict[str, dict[str, Any]] | None = None) -> receiving.BatchPlan:
    known = stored or {}
    return receiving.triage(batch, receiving.check(batch, verify_all=receiving.one_by_one(fake_verify), now=NOW),
                            stored=lambda gids: {g: known[g] for g in gids if g in known})


def statuses(plan: receiving.BatchPlan) -> dict[int, str]:
    return {i: o.status for i, o in plan.decided.items()}


# --- the pure triage ----------------------------------------------------------
def test_invalid_tampered_and_post_dated_transactions_are_refused_with_their_reasons():
    good, tampered, future = history(1)[0], history(1)[0], history(1)[0]
    tampered["payload"]["markdown"] = "changed\n"
    tampered["checksum"] = checksum(tampered["payload"])
    future["created_at"] = "2026-06-01T12:30:00Z"
    future["signature"] = fake_sign(signing_input(future))

    plan = triage([good, tampered, future, {"gid": 7}, "junk"])

    assert statuses(plan) == {1: "refused", 2: "refused", 3: "refused", 4: "refused"}
    assert "signature" in plan.decided[1].reason
    assert "future" in plan.decided[2].reason or "ahead" in plan.decided[2].reason
    assert plan.decided[3].gid == "" and plan.decided[4].gid == ""
    assert [t["gid"] for _, t in plan.order] == [good["gid"]]


def test_a_gid_twice_in_a_batch_or_already_stored_is_a_duplicate_or_equivocation():
    a, b = history(2)
    forged = dict(b)
    forged["payload"] = dict(b["payload"], markdown="other\n")
    forged["checksum"] = checksum(forged["payload"])
    forged["signature"] = fake_sign(signing_input(forged))

    plan = triage([a, dict(a), b, forged], stored={a["gid"]: a})

    assert statuses(plan) == {0: "duplicate", 1: "duplicate", 3: "refused"}
    assert "different content" in plan.decided[3].reason
    assert [t["gid"] for _, t in plan.order] == [b["gid"]]

    plan = triage([forged], stored={b["gid"]: b})
    assert plan.decided[0].status == "refused" and "already stored" in plan.decided[0].reason


def test_children_listed_before_their_parents_are_recorded_after_them():
    txs = history(5)
    batch = [txs[3], txs[1], txs[4], txs[0], txs[2]]

    plan = triage(batch)

    assert [t["gid"] for _, t in plan.order] == [t["gid"] for t in txs]
    assert plan.entities_created() == {txs[0]["entity_gid"]}


def test_a_parent_cycle_and_what_descends_from_it_are_refused_at_once():
    root = tx("", "item.created", [])
    item = root["entity_gid"]
    a_gid, b_gid = str(uuid.uuid4()), str(uuid.uuid4())
    a = tx(item, "item.edited", [b_gid])
    a["gid"] = a_gid
    a["signature"] = fake_sign(signing_input(a))
    b = tx(item, "item.edited", [a_gid])
    b["gid"] = b_gid
    b["signature"] = fake_sign(signing_input(b))
    child = tx(item, "item.edited", [a_gid])

    plan = triage([root, a, b, child])

    assert statuses(plan) == {1: "refused", 2: "refused", 3: "refused"}
    assert all("parent cycle" in plan.decided[i].reason for i in (1, 2, 3))
    assert [t["gid"] for _, t in plan.order] == [root["gid"]]


def test_a_parent_the_batch_holds_under_another_entity_is_refused():
    mine, theirs = history(1)[0], history(1)[0]
    stray = tx(mine["entity_gid"], "item.edited", [theirs["gid"]])

    plan = triage([mine, theirs, stray])

    assert statuses(plan) == {2: "refused"}
    assert "belong to another entity" in plan.decided[2].reason


def test_conclude_holds_what_misses_parents_and_refuses_parents_stored_elsewhere():
    a, b = history(2)
    other = history(1)[0]
    waits = tx(a["entity_gid"], "item.edited", [str(uuid.uuid4())])
    stray = tx(a["entity_gid"], "item.edited", [other["gid"]])
    plan = triage([b, waits, stray])
    recorded = {i: receiving.Outcome(t["gid"], receiving.MISSING, "unknown parents", list(t["parents"]))
                for i, t in plan.order}

    assert sorted(receiving.parents_outside(plan, recorded)) == sorted(
        {a["gid"], waits["parents"][0], other["gid"]})
    held = receiving.conclude(plan, recorded, foreign=[other["gid"]], hold=10)
    kept = receiving.conclude(plan, recorded, foreign=[], hold=None)

    assert [o.status for o in held] == ["pending", "pending", "refused"]
    assert "belong to another entity" in held[2].reason
    assert [o.status for o in kept] == ["missing", "missing", "missing"]


def test_conclude_holds_no_more_than_the_senders_room_and_refuses_the_rest_as_overloaded():
    txs = [tx(str(uuid.uuid4()), "item.edited", [str(uuid.uuid4())]) for _ in range(3)]
    plan = triage(txs)
    recorded = {i: receiving.Outcome(t["gid"], receiving.MISSING, "unknown parents", list(t["parents"]))
                for i, t in plan.order}

    outcomes = receiving.conclude(plan, recorded, foreign=[], hold=1)

    assert [o.status for o in outcomes] == ["pending", "refused", "refused"]
    assert all(o.error is not None and o.error.status == 429 for o in outcomes[1:])


# --- the application on eventsourcing's in-memory store ------------------------
@pytest.fixture
def app() -> NodeApplication:
    application = NodeApplication(memory_env(), node=HERE, signer=fake_sign, verifier=fake_verify,
                                  clock=lambda: NOW)
    yield application
    application.close()


def test_local_commands_and_received_batches_work_on_the_in_memory_store(app):
    made = app.create_item(author=f"ann@{HERE}", title="mine", markdown="one\n")
    txs = history(3)

    outcomes = app.receive(list(reversed(txs)))

    assert [o.status for o in outcomes] == ["stored"] * 3
    assert app.entity(txs[0]["entity_gid"]).heads == [txs[2]["gid"]]
    assert app.entity(made.entity_gid).state["title"] == "mine"
    assert app.sequence_of(txs[2]["gid"]) > app.sequence_of(made.gid)
    assert [o.status for o in app.receive(txs)] == ["duplicate"] * 3


def test_concurrent_received_edits_make_two_heads_on_the_in_memory_store(app):
    root = history(1)[0]
    left = tx(root["entity_gid"], "item.edited", [root["gid"]], markdown="left\n")
    right = tx(root["entity_gid"], "item.edited", [root["gid"]], markdown="right\n")

    app.receive([root, right, left])

    assert app.entity(root["entity_gid"]).heads == sorted([left["gid"], right["gid"]])


def test_held_transactions_wait_in_the_commit_and_settle_when_their_parents_arrive(app):
    recorder = app.recorder
    assert isinstance(recorder, MemoryRecorder)
    txs = history(3)

    first = app.receive(txs[2:], sender=THERE, cursor=(THERE, txs[2]["gid"]))

    assert [o.status for o in first] == ["pending"]
    assert list(recorder.held) == [txs[2]["gid"]] and recorder.pull_cursors[THERE].cursor == txs[2]["gid"]
    app.receive(txs[:2], sender=THERE)
    settled = app.receive([recorder.held[txs[2]["gid"]].tx], sender=THERE, from_pending=True)
    assert [o.status for o in settled] == ["stored"] and recorder.held == {}


def test_only_the_creator_of_an_item_shares_it_on_the_in_memory_store(app):
    made = app.create_item(author=f"ann@{HERE}", title="mine", markdown="one\n")
    share = {"item": made.entity_gid, "peer": "urn:domain:c.example.com", "permission": "read", "revoked": False}

    outcome = app.receive([tx("", "share.granted", [], entity="share", payload=share)])[0]

    assert outcome.status == "refused" and "can share it" in outcome.reason
