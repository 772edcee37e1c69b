"""The node's Application: the only door through which transactions are stored.

Local changes (``domain/commands.py``) are built here, signed with the node
key (the ``signer`` port) and recorded on their aggregate, in group commits
(``domain/commit.py``). Received transactions go through ``receive``: the
pure rules of ``domain/receiving.py`` decide what is refused, a duplicate,
or to be recorded (signatures checked with the ``verifier`` port); this
class loads the aggregates the plan names, records on them with the same
rules as local changes, and saves. Applying a received transaction never
creates a new one, so nothing echoes back.

Every save is one database transaction that also writes its
``CommitExtras`` (the gid index, held transactions, the pull cursor); its
order is the outbox order. The store must index transactions by gid (the
``TransactionIndex`` port: this project's recorders, in-memory included).
After a save the ``after_save`` port runs, outside the write lock (the
projector settles what the save's own commit did not project).

Writers change the cached aggregates in place (no copy per command) while
holding the write lock, and evict them when a save fails; readers get a
copy.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import IntegrityError, StoredEvent

from domain import authority, receiving, references
from domain.aggregate_cache import CacheWatch
from domain.attachment import Attachment
from domain.commands import Change, LocalCommands, Receipt
from domain.commit import (
    Command,
    CommitExtras,
    GroupCommit,
    HeldTransaction,
    IndexEntry,
    PullCursor,
    TransactionIndex,
    chunked,
)
from domain.entity import Entity
from domain.errors import DomainError, EntityConflict, EntityNotFound, TransactionNotFound, UnknownParents
from domain.item import Item
from domain.receiving import Outcome
from domain.share import Share
from domain.snapshots import due_for_snapshot
from domain.tag import Tag
from domain.transaction import CREATION_KINDS, utc_now

__all__ = ["NodeApplication", "Outcome", "Receipt", "TransactionIndex"]

log = logging.getLogger(__name__)
AGGREGATES: dict[str, type[Entity]] = {"item": Item, "tag": Tag, "share": Share, "attachment": Attachment}
SAVE_ATTEMPTS = 5
SAVE_CHUNK_BYTES = 1024 * 1024
E = TypeVar("E", bound=Entity)
Prepare = Callable[[dict[UUID, Entity]], tuple[Entity, dict[str, Any]]]


class NodeApplication(LocalCommands, Application):
    name = "fedsync"
    snapshotting_intervals = {Item: 100, Tag: 100, Share: 100}

    def __init__(self, env: dict[str, str], *, node: str, signer: Callable[[bytes], str], verifier: receiving.Verify,
                 verify_all: receiving.VerifyAll | None = None, clock: Callable[[], str] = utc_now,
                 after_save: Callable[[], None] | None = None) -> None:
        super().__init__(env=env)
        if not isinstance(self.recorder, TransactionIndex):
            raise TypeError(f"{type(self.recorder).__name__} cannot locate transactions by gid: configure one "
                            "of infrastructure.persistence's recorders (APPLICATION_RECORDER_TOPIC)")
        self.index: TransactionIndex = self.recorder
        self.node = node
        self.signer = signer
        self.verify_all = verify_all or receiving.one_by_one(verifier)
        self.clock = clock
        self.after_save = after_save or (lambda: None)
        self._write_lock = threading.RLock()
        self.cache_watch = CacheWatch(self.repository, self.recorder)
        self.group_commit = GroupCommit[Receipt](self._save_group, lock=self._write_lock, attempts=SAVE_ATTEMPTS)

    def _take_snapshots(self, processing_event: Any) -> None:
        """Snapshot what ``due_for_snapshot`` says, from the aggregates in memory. A failed snapshot is
        logged, not raised: the save's events are stored, and snapshots only speed up later loads."""
        for aggregate in due_for_snapshot(processing_event.events, processing_event.aggregates,
                                          self.snapshotting_intervals):
            try:
                snapshot_class = getattr(type(aggregate), "Snapshot", type(self).snapshot_class)
                self.snapshots.put([snapshot_class.take(aggregate)])
            except Exception:
                log.exception("snapshot of %s at version %d failed", aggregate.id, aggregate.version)

    # --- reading the store ---------------------------------------------
    def entity(self, entity_gid: str, cls: type[Entity] | None = None) -> Entity:
        """A private copy of the entity, to read."""
        with self._write_lock:  # not while a writer changes the cached aggregate in place
            return self._cached(entity_gid, cls, copy=True)

    def _cached(self, entity_gid: str, cls: type[Entity] | None, *, copy: bool, current: bool = False) -> Entity:
        """The entity from the aggregate cache, fast-forwarded to what is stored (``current``: unless the
        cache watch knows it holds all of that, ``domain/aggregate_cache.py``). Writers (holding the write
        lock) take the cached object itself, without the copy, and change it in place; if their save then
        fails, they evict (``cache_watch.forget``) what they touched: the cache never holds an unsaved change."""
        try:
            aggregate = self.cache_watch.get(UUID(entity_gid), copy=copy, current=current)
        except (AggregateNotFoundError, ValueError):
            raise EntityNotFound(f"no {cls.ENTITY if cls else 'entity'} {entity_gid} on this node") from None
        if cls is not None and not isinstance(aggregate, cls):
            raise EntityNotFound(f"no {cls.ENTITY} {entity_gid} on this node")
        return aggregate

    def transactions(self, gids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Stored transactions by gid (absent gids are left out)."""
        return {row["gid"]: self._decode(row)["tx"] for row in self.index.locate(gids)}

    def transaction(self, gid: str) -> dict[str, Any]:
        tx = self.transactions([gid]).get(gid)
        if tx is None:
            raise TransactionNotFound(f"no transaction {gid}")
        return tx

    def sequence_of(self, gid: str) -> int:
        rows = self.index.locate([gid])
        if not rows:
            raise TransactionNotFound(f"no transaction {gid} in this node's outbox")
        return int(rows[0]["seq"])

    def outbox_after(self, after: str | None, limit: int) -> list[tuple[int, dict[str, Any]]]:
        """Up to ``limit`` stored transactions after gid ``after`` (None: from the start)."""
        start = 0 if after is None else self.sequence_of(after)
        notifications = self.recorder.select_notifications(start, limit, inclusive_of_start=False)
        return [(n.id, self.mapper.to_domain_event(n).tx) for n in notifications]

    def _decode(self, row: dict[str, Any]) -> Any:
        stored = StoredEvent(originator_id=row["originator_id"], originator_version=row["originator_version"],
                             topic=row["topic"], state=bytes(row["state"]))
        return self.mapper.to_domain_event(stored).__dict__

    # --- received transactions -------------------------------------------
    def receive(self, batch: Sequence[Any], *, sender: str | None = None, cursor: tuple[str, str] | None = None,
                from_pending: bool = False, room: Callable[[], int] | None = None,
                prechecked: Sequence[receiving.Transaction | None] | None = None) -> list[Outcome]:
        """Store a batch of received transactions; one outcome per transaction, in order.

        With a ``sender``, what misses parents is held in the pending area (at most ``room()``, asked only
        then; the rest refused as ``Overloaded``) in the same commit as the rest; ``cursor`` (peer, gid) is the pull
        position committed with them; ``from_pending`` clears the pending rows of what is now settled;
        ``prechecked``: see ``receiving.check``.
        """
        references.prepare(batch)  # backlinks are extracted before the write lock, looked up inside it
        now = self.clock()
        checked = receiving.check(batch, verify_all=self.verify_all, now=now, prechecked=prechecked)
        for attempt in range(SAVE_ATTEMPTS):
            try:
                with self._write_lock:
                    outcomes = self._receive(batch, checked, now, sender, cursor, from_pending, room)
                break
            except IntegrityError:
                # Another process stored something meanwhile: start again from the store.
                if attempt == SAVE_ATTEMPTS - 1:
                    raise
        self.after_save()
        return outcomes

    def receive_one(self, tx: Any) -> Outcome:
        """Like ``receive`` for one transaction, raising the refusal as its domain error."""
        if (outcome := self.receive([tx])[0]).error is not None:
            raise outcome.error
        return outcome

    def _receive(self, batch: Sequence[Any], checked: Sequence[receiving.Checked], now: str, sender: str | None,
                 cursor: tuple[str, str] | None, from_pending: bool, room: Callable[[], int] | None
                 ) -> list[Outcome]:
        plan = receiving.triage(batch, checked, stored=self.transactions)
        aggregates: dict[str, Entity] = {}
        try:
            recorded = self._record_received(plan, aggregates)
            outside = receiving.parents_outside(plan, recorded)
            foreign = [row["gid"] for row in self.index.locate(outside)] if outside else []
            missing = any(o.status == receiving.MISSING for o in recorded.values())
            hold = None if sender is None else len(batch) if room is None else room() if missing else 0
            outcomes = receiving.conclude(plan, recorded, foreign=foreign, hold=hold)
            txs = dict(plan.order)
            extras = CommitExtras(
                held=[HeldTransaction(o.gid, sender, txs[i], o.missing, now)
                      for i, o in enumerate(outcomes) if o.status == receiving.PENDING and sender is not None],
                settled=[o.gid for o in outcomes if o.status != receiving.PENDING] if from_pending else (),
                pull_cursor=PullCursor(*cursor) if cursor is not None else None,
            )
            if aggregates or extras:
                self._save_in_chunks(list(aggregates.values()), extras)
        except BaseException:
            self.cache_watch.forget(a.id for a in aggregates.values())
            raise
        return outcomes

    def _record_received(self, plan: receiving.BatchPlan, aggregates: dict[str, Entity]) -> dict[int, Outcome]:
        """Record the plan's transactions on their aggregates (collected in ``aggregates``)."""
        created = [UUID(gid) for gid in plan.entities_created()]
        # One query tells which created entities are new, instead of a failed load each.
        absent = {str(i) for i in set(created) - self.index.existing(created)} if created else set()
        recorded: dict[int, Outcome] = {}
        batch: dict[str, dict[str, Any]] = {}  # recorded so far: a grant may come in the batch of its edit

        def lookup(gid: str) -> dict[str, Any]:
            return batch[gid] if gid in batch else self.transaction(gid)

        for i, tx in plan.order:
            try:
                self._apply_one(aggregates, tx, absent, lookup)
            except UnknownParents as e:
                recorded[i] = Outcome.unknown_parents(tx["gid"], e)
            except DomainError as e:
                recorded[i] = Outcome.refused(tx["gid"], e)
            else:
                recorded[i] = Outcome(tx["gid"], receiving.STORED)
                batch[tx["gid"]] = tx
        return recorded

    def _apply_one(self, aggregates: dict[str, Entity], tx: dict[str, Any], absent: set[str],
                   lookup: Callable[[str], dict[str, Any]]) -> Entity:
        """Record one transaction on its aggregate (``absent``: entities known not to be stored)."""
        key = tx["entity_gid"]
        aggregate = aggregates.get(key)
        if aggregate is None and key not in absent:
            aggregate = self._find(key)
        if tx["entity"] in ("share", "attachment"):  # the rules that look at the item it is about
            authority.check_on_item(tx, aggregate, lambda gid: aggregates.get(gid) or self._find(gid), lookup)
        if aggregate is None:
            if tx["kind"] not in CREATION_KINDS:
                raise UnknownParents(f"unknown {tx['entity']} {key} (its creation has not arrived)",
                                     list(tx["parents"]))
            aggregate = AGGREGATES[tx["entity"]].create(tx)
        else:
            if not isinstance(aggregate, AGGREGATES[tx["entity"]]):
                raise EntityConflict(f"{key} is a {aggregate.ENTITY}, not a {tx['entity']}")
            authority.check_change(aggregate, tx, lookup)
            aggregate.record(tx)
        aggregates[key] = aggregate
        return aggregate

    def _find(self, entity_gid: str) -> Entity | None:
        """The cached aggregate itself, for a writer holding the write lock; None if not stored."""
        try:
            return self._cached(entity_gid, None, copy=False)
        except EntityNotFound:
            return None  # not here (yet)

    # --- saving ------------------------------------------------------------
    def _save_in_chunks(self, aggregates: list[Entity], extras: CommitExtras) -> None:
        """Save a received batch in commits of at most ~SAVE_CHUNK_BYTES: PostgreSQL's pipelined insert stalls on
        one very large save (~5 MB, psycopg issue 685). Events keep their order; each chunk commits its own gid
        index rows, the other extras (held transactions, cursor) commit with the last chunk, so a crash in between
        only means the page is pulled again and its stored part is dropped as duplicates."""
        events = [event for aggregate in aggregates for event in aggregate.collect_events()]
        chunks = chunked(events, SAVE_CHUNK_BYTES, lambda event: len(event.tx["payload"].get("markdown", "")) + 2_000)
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            commit = CommitExtras(_index_of(chunk), extras.held, extras.settled, extras.pull_cursor) if last \
                else CommitExtras(_index_of(chunk))
            self._save(aggregates, chunk, commit)

    def _save(self, aggregates: Iterable[Entity], events: list[Any], extras: CommitExtras) -> None:
        """``Application.save`` of events collected from ``aggregates`` already, without its ``collect_events``
        (an ``isinstance`` of runtime protocols per object, ~10 µs each on Python 3.11: 8 % of receiving a page)."""
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        processing_event.events.extend(events)
        processing_event.aggregates.update((aggregate.id, aggregate) for aggregate in aggregates)
        processing_event.saved_kwargs["extras"] = extras
        recordings = self._record(processing_event)
        if recordings:
            self.cache_watch.saved(recordings[0].notification.id, recordings[-1].notification.id)
        self._take_snapshots(processing_event)
        self._notify(recordings)

    def run(self, entity_gid: str, cls: type[E], change: Change[E]) -> Receipt:
        """Apply ``change`` to the entity in a group commit; wait for it."""
        return self._run(self._preparing(entity_gid, cls, change))

    def submit(self, entity_gid: str, cls: type[E], change: Change[E], finished: Callable[[Command[Receipt]], None],
               hint: Any = None) -> None:
        """``run`` for a caller that does not wait (an event loop): ``finished`` gets the command once it is done
        and the projector settled, from the committing thread (``result``: the receipt, or ``error``); ``hint``:
        what the group commit's ``before_group`` reads for it (``domain/commit.py``)."""
        def settled(command: Command[Receipt]) -> None:
            try:
                self.after_save()
            except Exception as e:  # stored, but as ``_run``'s caller, this one hears of the failure
                command.error = command.error or e
            finished(command)
        self.group_commit.submit(Command(self._preparing(entity_gid, cls, change), finished=settled, hint=hint))

    def _preparing(self, entity_gid: str, cls: type[E], change: Change[E]) -> Prepare:
        def prepare(group: dict[UUID, Entity]) -> tuple[Entity, dict[str, Any]]:
            aggregate = group.get(UUID(entity_gid)) or self._cached(entity_gid, cls, copy=False, current=True)
            group[aggregate.id] = aggregate  # forgotten from the cache if the save fails
            tx = change(aggregate)  # a refusal leaves the aggregate untouched
            authority.check_change(aggregate, tx, self.transaction)
            aggregate.record(tx)
            return aggregate, tx
        return prepare

    def _store_new(self, tx: dict[str, Any]) -> Receipt:
        return self._run(lambda group: (AGGREGATES[tx["entity"]].create(tx), tx))

    def _run(self, prepare: Prepare) -> Receipt:
        """Run one local command in a group commit, then let the projector settle."""
        receipt = self.group_commit.run(Command(prepare))
        self.after_save()
        return receipt

    def _save_group(self, batch: list[Command[Receipt]]) -> bool:
        """Apply and save the commands in one transaction; False (nothing saved) if the save failed
        with more than one command in it, else the save's exception propagates."""
        group: dict[UUID, Entity] = {}
        events: list[Any] = []
        applied: list[tuple[Command[Receipt], dict[str, Any]]] = []
        views: dict[str, dict[str, Any]] = {}  # the item rows the commit's projection wrote
        try:
            self.cache_watch.refresh()  # one read for the group: which cached aggregates others stored to
            for command in batch:
                try:
                    aggregate, tx = command.prepare(group)
                except DomainError as e:
                    command.finish(error=e)
                    continue
                group[aggregate.id] = aggregate
                events.extend(aggregate.collect_events())
                applied.append((command, tx))
            if events:
                self._save(group.values(), events, CommitExtras(_index_of(events), views=views))
        except BaseException:
            self.cache_watch.forget(group)
            if len(batch) > 1:
                return False  # the commands not refused are tried again, alone
            raise
        for command, tx in applied:
            command.finish(result=Receipt(tx["entity_gid"], tx["gid"], views.get(tx["entity_gid"])))
        return True


def _index_of(events: Iterable[Any]) -> list[IndexEntry]:
    return [IndexEntry(e.tx["gid"], e.originator_id, e.originator_version, e.tx) for e in events]
