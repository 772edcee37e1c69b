"""Receiving a batch: what happens to each transaction, decided without I/O.

A received batch goes through three steps; the first and the last are pure
functions here, the middle one is the application's (it loads aggregates
and records the transactions on them):

1. ``check`` validates each transaction, checks its signature (the
   ``verify`` port) and compares its ``created_at`` with the clock; then
   ``triage`` decides what needs the store but no aggregate. A gid
   sent twice in the batch, or already stored (the ``stored`` lookup), is a
   duplicate when the content is the same and equivocation otherwise. What
   is left is put in an order where every transaction comes after the
   parents the batch also holds (batch order otherwise), so one pass
   records a child after its parent. Parents that can never arrive first
   are refused at once: a parent cycle in the batch (only possible with
   forged gids) and whatever descends from it, and a parent that the batch
   holds under another entity.
2. The application records each transaction of ``BatchPlan.order`` on its
   aggregate: ``stored``, or ``missing`` (a parent is unknown), or refused
   by the aggregate's own checks.
3. ``conclude``: a missing parent that is stored here under another entity
   can never join this entity's history: refused. Everything else that
   misses parents is held (``pending``) when the batch came from a sender
   that can be asked for them, and stays ``missing`` otherwise.

Every outcome depends only on the batch, the stored transactions and the
clock, so any node decides the same for the same inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from domain import history
from domain.errors import DomainError, Equivocation, InvalidTransaction, Overloaded, UnknownParents
from domain.transaction import CREATION_KINDS, check_created_at, content_key, signing_input, validate

Transaction = dict[str, Any]
Verify = Callable[[Transaction, bytes], None]
StoredLookup = Callable[[Sequence[str]], Mapping[str, Transaction]]
VerifyAll = Callable[[Sequence[tuple[Transaction, bytes]]], list[DomainError | None]]  # a batch at a time

STORED = "stored"
DUPLICATE = "duplicate"
REFUSED = "refused"
MISSING = "missing"  # a parent is unknown and nobody can be asked for it
PENDING = "pending"  # a parent is unknown: held, its sender is asked for the ancestors


@dataclass(frozen=True)
class Outcome:
    """What happened to one received transaction."""

    gid: str
    status: str  # STORED | DUPLICATE | REFUSED | MISSING | PENDING
    reason: str = ""
    missing: list[str] = field(default_factory=list)
    error: DomainError | None = None

    @classmethod
    def refused(cls, gid: str, error: DomainError) -> Outcome:
        return cls(gid, REFUSED, error.detail, error=error)

    @classmethod
    def unknown_parents(cls, gid: str, error: UnknownParents) -> Outcome:
        return cls(gid, MISSING, error.detail, list(error.missing), error)


@dataclass(frozen=True)
class BatchPlan:
    """The triage of a batch: outcomes decided so far, and what to record in which order."""

    size: int
    decided: Mapping[int, Outcome]  # batch position -> outcome
    order: Sequence[tuple[int, Transaction]]  # to record on aggregates, parents first

    def entities_created(self) -> set[str]:
        """Entity gids that a creation in this batch names (they may or may not exist yet)."""
        return {tx["entity_gid"] for _, tx in self.order if tx["kind"] in CREATION_KINDS}


Checked = Transaction | DomainError  # a received transaction, validated and verified, or why not


def one_by_one(verify: Verify) -> VerifyAll:
    """``verify`` applied to each (transaction, signing input) in turn: the refusal of each, or None."""
    def verify_all(signed: Sequence[tuple[Transaction, bytes]]) -> list[DomainError | None]:
        errors: list[DomainError | None] = []
        for tx, data in signed:
            try:
                verify(tx, data)
            except DomainError as e:
                errors.append(e)
            else:
                errors.append(None)
        return errors
    return verify_all


def verified(batch: Sequence[Any], *, verify_all: VerifyAll) -> list[Checked]:
    """Validate each received transaction and check its signature: what depends on neither the store nor
    the clock, so another process may do it (``infrastructure/check_pool.py``). The signatures are checked
    together (``verify_all`` may spread them over several cores) after every transaction was validated and
    canonicalised."""
    checked: list[Checked | None] = [None] * len(batch)
    signed: list[tuple[int, Transaction, bytes]] = []
    for i, data in enumerate(batch):
        try:
            tx = validate(data)
            signed.append((i, tx, signing_input(tx)))
        except DomainError as e:
            checked[i] = e
    errors = verify_all([(tx, data) for _, tx, data in signed])
    for (i, tx, _), error in zip(signed, errors, strict=True):
        checked[i] = tx if error is None else error
    return [c for c in checked if c is not None]


def check(batch: Sequence[Any], *, verify_all: VerifyAll, now: str,
          prechecked: Sequence[Transaction | None] | None = None) -> list[Checked]:
    """``verified``, then each transaction's ``created_at`` against the clock: what needs no store, so it
    runs before the write lock is taken. ``prechecked``, one per transaction of the batch, is what another
    process already validated and verified (None: check that one here, which also says why it fails)."""
    done: list[Checked | None] = list(prechecked) if prechecked is not None else [None] * len(batch)
    if len(done) != len(batch):
        raise ValueError(f"{len(done)} prechecked answers for a batch of {len(batch)}")
    todo = [i for i, tx in enumerate(done) if tx is None]
    for i, result in zip(todo, verified([batch[i] for i in todo], verify_all=verify_all), strict=True):
        done[i] = result
    checked: list[Checked] = []
    for tx in done:
        if not isinstance(tx, DomainError):
            try:
                check_created_at(tx, now)
            except DomainError as e:
                tx = e
        checked.append(tx)
    return checked


def triage(batch: Sequence[Any], checked: Sequence[Checked], *, stored: StoredLookup) -> BatchPlan:
    """Decide what can be decided about a received batch (``checked`` by ``check``) before any aggregate is
    loaded."""
    decided: dict[int, Outcome] = {}
    accepted: dict[str, tuple[int, Transaction]] = {}
    for i, (data, tx) in enumerate(zip(batch, checked, strict=True)):
        if isinstance(tx, DomainError):
            decided[i] = Outcome.refused(_gid_of(data), tx)
            continue
        first = accepted.get(tx["gid"])
        if first is None:
            accepted[tx["gid"]] = (i, tx)
        else:
            decided[i] = _same_or_equivocation(first[1], tx, "sent twice with different content")
    for gid, existing in stored(list(accepted)).items():
        i, tx = accepted.pop(gid)
        decided[i] = _same_or_equivocation(existing, tx, "is already stored with other content")
    for gid, error in _impossible_in_batch(accepted).items():
        decided[accepted.pop(gid)[0]] = Outcome.refused(gid, error)
    return BatchPlan(len(batch), decided, _parents_first(accepted))


def conclude(plan: BatchPlan, recorded: Mapping[int, Outcome], *, foreign: Iterable[str],
             hold: int | None) -> list[Outcome]:
    """Every outcome in batch order, once the plan's transactions were recorded.

    ``foreign``: gids among the missing parents that are stored here (under
    another entity, or they would not be missing). ``hold``: how many of
    what misses parents may be held for its sender to fill (the first ones;
    None: nothing is held, it stays ``missing``); the rest is refused as
    ``Overloaded``: the sender has filled its room here.
    """
    foreign = set(foreign)
    txs = dict(plan.order)
    outcomes = []
    for i in range(plan.size):
        outcome = plan.decided.get(i) or recorded[i]
        if outcome.status == MISSING:
            other = sorted(set(outcome.missing) & foreign)
            if other:
                entity = txs[i]["entity_gid"]
                outcome = Outcome.refused(outcome.gid, InvalidTransaction(
                    f"parent(s) {', '.join(other)} of {outcome.gid} belong to another entity than {entity}"))
            elif hold is not None and hold > 0:
                hold -= 1
                outcome = Outcome(outcome.gid, PENDING, outcome.reason, outcome.missing, outcome.error)
            elif hold is not None:
                outcome = Outcome.refused(outcome.gid, Overloaded(
                    f"the sender has as many transactions held here for missing parents as it may: "
                    f"{outcome.gid} is not held; send its parents first", retry_after=30))
        outcomes.append(outcome)
    return outcomes


def parents_outside(plan: BatchPlan, recorded: Mapping[int, Outcome]) -> list[str]:
    """Missing parents the batch does not hold: the application asks the store which exist."""
    in_batch = {tx["gid"] for _, tx in plan.order}
    return sorted({p for o in recorded.values() if o.status == MISSING for p in o.missing} - in_batch)


def _same_or_equivocation(first: Transaction, tx: Transaction, what: str) -> Outcome:
    if content_key(first) == content_key(tx):
        return Outcome(tx["gid"], DUPLICATE)
    return Outcome.refused(tx["gid"], Equivocation(f"{tx['gid']} {what}"))


def _impossible_in_batch(accepted: Mapping[str, tuple[int, Transaction]]) -> dict[str, DomainError]:
    """Transactions whose parents in the batch can never be recorded before them."""
    refused: dict[str, DomainError] = {}
    for gid, (_, tx) in accepted.items():
        other = sorted(p for p in tx["parents"] if p in accepted and accepted[p][1]["entity_gid"] != tx["entity_gid"])
        if other:
            refused[gid] = InvalidTransaction(
                f"parent(s) {', '.join(other)} of {gid} belong to another entity than {tx['entity_gid']}")
    in_batch = {gid: [p for p in tx["parents"] if p in accepted] for gid, (_, tx) in accepted.items()}
    for gid in sorted(history.blocked_by_cycles(in_batch)):
        refused.setdefault(gid, InvalidTransaction(f"{gid} is part of (or descends from) a parent cycle"))
    return refused


def _parents_first(accepted: Mapping[str, tuple[int, Transaction]]) -> list[tuple[int, Transaction]]:
    """Batch order, except that a transaction waits for the parents the batch holds."""
    ordered = sorted(accepted.values(), key=lambda pair: pair[0])
    if not any(p in accepted for _, tx in ordered for p in tx["parents"]):
        return ordered  # the usual case: nothing in the batch depends on a later entry
    done: set[str] = set()
    result: list[tuple[int, Transaction]] = []

    def visit(pair: tuple[int, Transaction]) -> None:
        stack = [pair]
        while stack:
            i, tx = stack[-1]
            waiting = [accepted[p] for p in tx["parents"] if p in accepted and p not in done]
            if waiting:
                stack.extend(sorted(waiting, key=lambda w: w[0], reverse=True))
                continue
            stack.pop()
            if tx["gid"] not in done:
                done.add(tx["gid"])
                result.append((i, tx))

    for pair in ordered:
        visit(pair)
    return result


def _gid_of(data: Any) -> str:
    gid = data.get("gid") if isinstance(data, dict) else None
    return gid if isinstance(gid, str) else ""
