"""The node's Application: the only door through which transactions are stored.

Local changes are built here, signed with the node key (the ``signer``
port) and recorded on their aggregate. Received transactions go through
``receive``: validated, verified against their origin's keys (the
``verifier`` port), deduplicated by gid (same content: a no-op; other
content: equivocation, refused), refused while a parent is unknown, and
otherwise recorded on the same aggregates with the same rules. Applying a
received transaction never creates a new one, so nothing echoes back.

Every save is one database transaction that also writes the gid index (see
``infrastructure/persistence.py``); its order is the outbox order. After a
save the ``after_save`` port runs, outside the write lock (the node's
projector settles: it projects whatever the save's own commit did not).

Writers change the cached aggregates in place (no copy per command) while
holding the write lock, and evict them when a save fails; readers get a
copy.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, StoredEvent

from domain import review
from domain.entity import Entity
from domain.errors import (
    DomainError,
    EntityConflict,
    EntityNotFound,
    Equivocation,
    Forbidden,
    InvalidTransaction,
    TransactionNotFound,
    UnknownParents,
)
from domain.item import Item
from domain.share import Share
from domain.tag import Tag
from domain.transaction import (
    CREATION_KINDS,
    check_created_at,
    checksum,
    content_key,
    signing_input,
    utc_now,
    validate,
)

log = logging.getLogger(__name__)
AGGREGATES: dict[str, type[Entity]] = {"item": Item, "tag": Tag, "share": Share}
SAVE_ATTEMPTS = 5
SAVE_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Receipt:
    """What a local command made: the entity and the new transaction."""

    entity_gid: str
    gid: str


@dataclass
class Outcome:
    """What happened to one received transaction."""

    gid: str
    status: str  # stored | duplicate | refused | missing | pending (held for its parents)
    reason: str = ""
    missing: list[str] = field(default_factory=list)
    error: DomainError | None = None


class NodeApplication(Application):
    name = "fedsync"
    snapshotting_intervals = {Item: 100, Tag: 100, Share: 100}

    def __init__(
        self,
        env: dict[str, str],
        *,
        node: str,
        signer: Callable[[bytes], str],
        verifier: Callable[[dict[str, Any], bytes], None],
        clock: Callable[[], str] = utc_now,
        after_save: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(env=env)
        self.node = node
        self.signer = signer
        self.verifier = verifier
        self.clock = clock
        self.after_save = after_save or (lambda: None)
        self._write_lock = threading.RLock()
        self._group = threading.Condition()  # guards _queue and _leading (see _commit)
        self._queue: list[_Command] = []
        self._leading = False

    def _take_snapshots(self, processing_event: Any) -> None:
        """Snapshot from the aggregate in memory when the save left it at the snapshot's version.

        The library rebuilds the aggregate from the store for every snapshot
        (up to ``interval`` events read back while the write lock is held: a
        latency spike for every writer waiting). A failed snapshot is logged,
        not raised: the save's events are stored, and snapshots only speed up
        later loads.
        """
        for event in processing_event.events:
            aggregate = processing_event.aggregates.get(event.originator_id)
            interval = self.snapshotting_intervals.get(type(aggregate)) if aggregate is not None else None
            if interval is None or event.originator_version % interval:
                continue
            try:
                if aggregate.version == event.originator_version:
                    snapshot_class = getattr(type(aggregate), "Snapshot", type(self).snapshot_class)
                    self.snapshots.put([snapshot_class.take(aggregate)])
                else:  # later events of the same save moved it on: the library's way
                    self.take_snapshot(event.originator_id, version=event.originator_version)
            except Exception:
                log.exception("snapshot of %s at version %d failed (its events are stored)",
                              event.originator_id, event.originator_version)

    # --- reading the store ---------------------------------------------
    def entity(self, entity_gid: str, cls: type[Entity] | None = None) -> Entity:
        """A private copy of the entity, to read."""
        with self._write_lock:  # not while a writer changes the cached aggregate in place
            return self._cached(entity_gid, cls, copy=True)

    def _cached(self, entity_gid: str, cls: type[Entity] | None, *, copy: bool) -> Entity:
        """The entity from the aggregate cache, fast-forwarded to what is stored.

        Writers (holding the write lock) take the cached object itself,
        without the copy, and change it in place; if their save then fails,
        they ``_forget`` what they touched, so the cache never holds an
        unsaved change.
        """
        try:
            aggregate = self.repository.get(UUID(entity_gid), deepcopy_from_cache=copy)
        except (AggregateNotFoundError, ValueError):
            raise EntityNotFound(f"no entity {entity_gid}") from None
        if cls is not None and not isinstance(aggregate, cls):
            raise EntityNotFound(f"no {cls.ENTITY} {entity_gid}")
        return aggregate

    def _forget(self, ids: Iterable[UUID]) -> None:
        if self.repository.cache is not None:
            for aggregate_id in ids:
                with contextlib.suppress(KeyError):
                    self.repository.cache.get(aggregate_id, evict=True)

    def transactions(self, gids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Stored transactions by gid (absent gids are left out)."""
        found = {}
        for row in self.recorder.locate(gids):
            found[row["gid"]] = self._decode(row)["tx"]
        return found

    def transaction(self, gid: str) -> dict[str, Any]:
        tx = self.transactions([gid]).get(gid)
        if tx is None:
            raise TransactionNotFound(f"no transaction {gid}")
        return tx

    def sequence_of(self, gid: str) -> int:
        rows = self.recorder.locate([gid])
        if not rows:
            raise TransactionNotFound(f"no transaction {gid} in this node's outbox")
        return int(rows[0]["seq"])

    def outbox_after(self, after: str | None, limit: int) -> list[tuple[int, dict[str, Any]]]:
        """Up to ``limit`` stored transactions after gid ``after`` (None: from the start)."""
        start = 0 if after is None else self.sequence_of(after)
        notifications = self.recorder.select_notifications(start, limit, inclusive_of_start=False)
        return [(n.id, self.mapper.to_domain_event(n).tx) for n in notifications]

    def _decode(self, row: dict[str, Any]) -> Any:
        stored = StoredEvent(
            originator_id=row["originator_id"],
            originator_version=row["originator_version"],
            topic=row["topic"],
            state=bytes(row["state"]),
        )
        return self.mapper.to_domain_event(stored).__dict__

    # --- local commands ------------------------------------------------
    def create_item(self, *, author: str, title: str, markdown: str, tags: Iterable[str] = (),
                    scope: str = "NETWORK") -> Receipt:
        payload = _item_state(title, markdown, tags, [], False)
        tx = self._new_tx("item", str(uuid4()), "item.created", [], author, scope, payload)
        return self._store_new(tx)

    def edit_item(self, item_gid: str, *, parent: str, author: str, title: str | None = None,
                  markdown: str | None = None, tags: Iterable[str] | None = None,
                  scope: str | None = None) -> Receipt:
        def change(item: Item) -> dict[str, Any]:
            item.check_can_edit(parent)
            head = item.head_states[parent]
            old = head["payload"]
            payload = _item_state(
                old["title"] if title is None else title,
                old["markdown"] if markdown is None else markdown,
                old["tags"] if tags is None else tags,
                old["forked_from"],
                False,
            )
            return self._new_tx("item", item_gid, "item.edited", [parent], author,
                                scope or head["scope"], payload)

        return self._change(item_gid, Item, change)

    def delete_item(self, item_gid: str, *, parent: str, author: str) -> Receipt:
        def change(item: Item) -> dict[str, Any]:
            item.check_can_edit(parent)
            head = item.head_states[parent]
            payload = dict(head["payload"], deleted=True)
            return self._new_tx("item", item_gid, "item.deleted", [parent], author, head["scope"], payload)

        return self._change(item_gid, Item, change)

    def fork_item(self, sources: Sequence[str], *, author: str, title: str | None = None,
                  markdown: str | None = None, tags: Iterable[str] | None = None,
                  scope: str | None = None) -> Receipt:
        """A new item whose ``forked_from`` lists the sources; it starts as the first one."""
        if not sources:
            raise EntityConflict("a fork needs at least one source item")
        first = self.entity(sources[0], Item)
        for other in sources[1:]:
            self.entity(other, Item)
        base = first.state
        payload = _item_state(
            base["title"] if title is None else title,
            base["markdown"] if markdown is None else markdown,
            base["tags"] if tags is None else tags,
            sources,
            False,
        )
        tx = self._new_tx("item", str(uuid4()), "item.forked", [], author,
                          scope or first.current["scope"], payload)
        return self._store_new(tx)

    def merge_item(self, item_gid: str, *, heads: Sequence[str], author: str,
                   document: dict[str, Any], scope: str | None = None) -> Receipt:
        """An ``item.merged`` transaction whose parents are the given heads."""

        def change(item: Item) -> dict[str, Any]:
            item.check_can_merge(list(heads))
            current = item.current
            payload = _item_state(
                document.get("title", current["payload"]["title"]),
                document.get("markdown", current["payload"]["markdown"]),
                document.get("tags", current["payload"]["tags"]),
                document.get("forked_from", current["payload"]["forked_from"]),
                bool(document.get("deleted", False)),
            )
            return self._new_tx("item", item_gid, "item.merged", sorted(set(heads)), author,
                                scope or current["scope"], payload)

        return self._change(item_gid, Item, change)

    def review_conflict(self, item_gid: str) -> review.Review:
        """The review of an item's heads: its DAG, its head states and one stored base transaction."""
        item = self.entity(item_gid, Item)
        return review.review(item.gid, item.parents_of, item.head_states, self.transaction)

    def resolve_conflict(self, item_gid: str, *, heads: Sequence[str], author: str, document: dict[str, Any],
                         scope: str | None = None, accept_markers: bool = False) -> Receipt:
        """A merge editor's ``item.merged``: it names exactly the current heads and holds no markers."""

        def change(item: Item) -> dict[str, Any]:
            review.check_heads(item.gid, item.heads, heads)
            item.check_can_merge(list(heads))
            review.check_resolution(document, accept_markers=accept_markers)
            payload = _item_state(document["title"], document["markdown"], document["tags"],
                                  document["forked_from"], bool(document["deleted"]))
            chosen = scope or review.narrowest_scope([item.head_states[h]["scope"] for h in item.heads])
            return self._new_tx("item", item_gid, "item.merged", sorted(set(heads)), author, chosen, payload)

        return self._change(item_gid, Item, change)

    def create_tag(self, *, author: str, name: str, scope: str = "NETWORK") -> Receipt:
        tx = self._new_tx("tag", str(uuid4()), "tag.created", [], author, scope,
                          {"name": name, "deleted": False})
        return self._store_new(tx)

    def rename_tag(self, tag_gid: str, *, parent: str, author: str, name: str) -> Receipt:
        def change(tag: Tag) -> dict[str, Any]:
            tag.check_is_head(parent)
            head = tag.head_states[parent]
            payload = {"name": name, "deleted": False}
            return self._new_tx("tag", tag_gid, "tag.renamed", [parent], author, head["scope"], payload)

        return self._change(tag_gid, Tag, change)

    def delete_tag(self, tag_gid: str, *, parent: str, author: str) -> Receipt:
        def change(tag: Tag) -> dict[str, Any]:
            tag.check_is_head(parent)
            head = tag.head_states[parent]
            payload = dict(head["payload"], deleted=True)
            return self._new_tx("tag", tag_gid, "tag.deleted", [parent], author, head["scope"], payload)

        return self._change(tag_gid, Tag, change)

    def grant_share(self, *, author: str, item_gid: str, peer: str, permission: str) -> Receipt:
        item = self.entity(item_gid, Item)
        self._check_sharer(self.node, item)
        payload = {"item": item_gid, "peer": peer, "permission": permission, "revoked": False}
        tx = self._new_tx("share", str(uuid4()), "share.granted", [], author,
                          item.current["scope"], payload)
        return self._store_new(tx)

    def revoke_share(self, share_gid: str, *, author: str) -> Receipt:
        def change(share: Share) -> dict[str, Any]:
            self._check_sharer(self.node, share)
            current = share.current
            payload = dict(current["payload"], revoked=True)
            return self._new_tx("share", share_gid, "share.revoked", share.heads, author,
                                current["scope"], payload)

        return self._change(share_gid, Share, change)

    # --- received transactions -------------------------------------------
    def receive(self, batch: Sequence[Any], *, sender: str | None = None,
                cursor: tuple[str, str] | None = None, from_pending: bool = False) -> list[Outcome]:
        """Store a batch of received transactions; one outcome per transaction, in order.

        With a ``sender``, transactions whose parents are missing are held in
        the pending area (status ``pending``) in the same commit as the rest;
        ``cursor`` (peer, gid) is the pull position committed with them;
        ``from_pending`` clears the pending rows of what is now settled.
        """
        for attempt in range(SAVE_ATTEMPTS):
            try:
                with self._write_lock:
                    outcomes = self._receive(batch, sender, cursor, from_pending)
                break
            except IntegrityError:
                # Another process stored something meanwhile: start again from the store.
                if attempt == SAVE_ATTEMPTS - 1:
                    raise
        self.after_save()
        return outcomes

    def receive_one(self, tx: Any) -> Outcome:
        """Like ``receive`` for one transaction, raising the refusal as its domain error."""
        outcome = self.receive([tx])[0]
        if outcome.error is not None:
            raise outcome.error
        return outcome

    def _receive(self, batch: Sequence[Any], sender: str | None, cursor: tuple[str, str] | None,
                 from_pending: bool) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(batch)
        accepted: dict[str, tuple[int, dict[str, Any]]] = {}
        for i, data in enumerate(batch):
            try:
                tx = validate(data)
                self.verifier(tx, signing_input(tx))
                check_created_at(tx, self.clock())
            except DomainError as e:
                outcomes[i] = _refused(_gid_of(data), e)
                continue
            if tx["gid"] in accepted:
                first = accepted[tx["gid"]][1]
                same = content_key(first) == content_key(tx)
                outcomes[i] = (Outcome(tx["gid"], "duplicate") if same else
                               _refused(tx["gid"], Equivocation(f"{tx['gid']} sent twice with different content")))
                continue
            accepted[tx["gid"]] = (i, tx)
        self._drop_known(accepted, outcomes)
        aggregates: dict[str, Entity] = {}
        try:
            index = self._apply_received(accepted, outcomes, aggregates)
            effects: dict[str, Any] = {}
            if sender is not None:
                effects["hold"] = self._hold(accepted, outcomes, sender)
            if from_pending:
                effects["resolved"] = [o.gid for o in outcomes if o is not None and o.status != "pending"]
            if cursor is not None:
                effects["pull_cursor"] = cursor
            if index or any(effects.values()):
                self._save_in_chunks(list(aggregates.values()), effects)
        except BaseException:
            self._forget(a.id for a in aggregates.values())
            raise
        return [o for o in outcomes if o is not None]

    def _save_in_chunks(self, aggregates: list[Entity], effects: dict[str, Any]) -> None:
        """Save a received batch in commits of at most ~SAVE_CHUNK_BYTES.

        PostgreSQL's pipelined insert stalls on a single very large save (about
        5 MB, psycopg issue 685), and a page of big documents can exceed that.
        Events keep their order; each chunk commits its own gid index rows, the
        side effects (held transactions, cursor) commit with the last chunk, so a
        crash in between only means the page is pulled again and its stored part
        is dropped as duplicates.
        """
        events = [event for aggregate in aggregates for event in aggregate.collect_events()]
        chunks: list[list[Any]] = [[]]
        size = 0
        for event in events:
            weight = len(event.tx["payload"].get("markdown", "")) + 2_000
            if chunks[-1] and size + weight > SAVE_CHUNK_BYTES:
                chunks.append([])
                size = 0
            chunks[-1].append(event)
            size += weight
        for i, chunk in enumerate(chunks):
            index = [(e.tx["gid"], e.originator_id, e.originator_version) for e in chunk]
            extra = effects if i == len(chunks) - 1 else {}
            # The aggregates (their events already collected) only let the library snapshot them.
            self.save(*aggregates, *chunk, tx_index=index, **extra)

    def _hold(self, accepted: dict[str, tuple[int, dict[str, Any]]], outcomes: list[Outcome | None],
              sender: str) -> list[tuple[str, str, str, str, str]]:
        rows = []
        for i, tx in accepted.values():
            outcome = outcomes[i]
            if outcome is not None and outcome.status == "missing":
                outcome.status = "pending"
                rows.append((tx["gid"], sender, json.dumps(tx), json.dumps(outcome.missing), self.clock()))
        return rows

    def _drop_known(self, accepted: dict[str, tuple[int, dict[str, Any]]],
                    outcomes: list[Outcome | None]) -> None:
        stored = self.transactions(list(accepted))
        for gid, existing in stored.items():
            i, tx = accepted.pop(gid)
            if content_key(existing) == content_key(tx):
                outcomes[i] = Outcome(gid, "duplicate")
            else:
                outcomes[i] = _refused(gid, Equivocation(f"{gid} is already stored with other content"))

    def _apply_received(self, accepted: dict[str, tuple[int, dict[str, Any]]], outcomes: list[Outcome | None],
                        aggregates: dict[str, Entity]) -> list[tuple[str, UUID, int]]:
        """Record the accepted transactions on their aggregates (collected in ``aggregates``)."""
        index: list[tuple[str, UUID, int]] = []
        todo = sorted(accepted.values(), key=lambda pair: pair[0])
        # One query tells which created entities are new, instead of a failed load each.
        creations = {UUID(tx["entity_gid"]) for _, tx in todo if tx["kind"] in CREATION_KINDS}
        absent = {str(i) for i in creations - self.recorder.existing(list(creations))} if creations else set()
        # Repeat while progress is made, so a batch may list a child before its parent.
        while todo:
            left = []
            for i, tx in todo:
                try:
                    aggregate = self._apply_one(aggregates, tx, absent)
                except UnknownParents as e:
                    left.append((i, tx))
                    outcomes[i] = Outcome(tx["gid"], "missing", e.detail, e.missing, e)
                    continue
                except DomainError as e:
                    outcomes[i] = _refused(tx["gid"], e)
                    continue
                index.append((tx["gid"], aggregate.id, aggregate.version))
                outcomes[i] = Outcome(tx["gid"], "stored")
            if len(left) == len(todo):
                break
            todo = left
        self._refuse_impossible(accepted, outcomes)
        return index

    def _refuse_impossible(self, accepted: dict[str, tuple[int, dict[str, Any]]],
                           outcomes: list[Outcome | None]) -> None:
        """Refuse what waits for parents that can never come, instead of holding it forever.

        A parent that is stored here (or is in the batch) under another entity
        will never join this entity's DAG; parents that form a cycle (only
        possible with forged gids) never arrive before each other, and neither
        does anything that descends from such a cycle.
        """
        stuck = {tx["gid"]: (i, tx) for i, tx in accepted.values()
                 if outcomes[i] is not None and outcomes[i].status == "missing"}
        if not stuck:
            return
        missing = {gid: outcomes[i].missing for gid, (i, _) in stuck.items()}
        foreign = {p for gid, (_, tx) in stuck.items() for p in missing[gid]
                   if p in accepted and accepted[p][1]["entity_gid"] != tx["entity_gid"]}
        outside = {p for gid in stuck for p in missing[gid] if p not in accepted}
        for row in self.recorder.locate(sorted(outside)) if outside else ():
            foreign.add(row["gid"])  # stored, yet missing from this entity: it belongs to another
        waiting = {gid: {p for p in tx["parents"] if p in stuck} for gid, (_, tx) in stuck.items()}
        free = [gid for gid, parents in waiting.items() if not parents]
        while free:  # peel what does not wait on another stuck transaction; a cycle never peels
            done = free.pop()
            for gid, parents in waiting.items():
                if done in parents:
                    parents.discard(done)
                    if not parents:
                        free.append(gid)
            waiting[done] = set()
        cyclic = {gid for gid, parents in waiting.items() if parents}
        for gid, (i, tx) in stuck.items():
            other = sorted(set(missing[gid]) & foreign)
            if other:
                outcomes[i] = _refused(gid, InvalidTransaction(
                    f"parent(s) {', '.join(other)} of {gid} belong to another entity than {tx['entity_gid']}"))
            elif gid in cyclic:
                outcomes[i] = _refused(gid, InvalidTransaction(f"{gid} is part of (or descends from) a parent cycle"))

    def _apply_one(self, aggregates: dict[str, Entity], tx: dict[str, Any], absent: set[str]) -> Entity:
        """Record one transaction on its aggregate (``absent``: entities known not to be stored)."""
        key = tx["entity_gid"]
        aggregate = aggregates.get(key)
        if aggregate is None and key not in absent:
            try:
                aggregate = self._cached(key, None, copy=False)
            except EntityNotFound:
                aggregate = None
        if tx["entity"] == "share":
            self._check_sharer(tx["origin"], aggregate or self._known_item(aggregates, tx["payload"]["item"]))
        if aggregate is None:
            if tx["kind"] not in CREATION_KINDS:
                raise UnknownParents(f"unknown {tx['entity']} {key} (its creation has not arrived)",
                                     list(tx["parents"]))
            aggregate = AGGREGATES[tx["entity"]].create(tx)
        else:
            if not isinstance(aggregate, AGGREGATES[tx["entity"]]):
                raise EntityConflict(f"{key} is a {aggregate.ENTITY}, not a {tx['entity']}")
            aggregate.record(tx)
        aggregates[key] = aggregate
        return aggregate

    def _known_item(self, aggregates: dict[str, Entity], item_gid: str) -> Entity | None:
        item = aggregates.get(item_gid)
        if item is None:
            try:
                item = self._cached(item_gid, None, copy=False)  # read only, under the write lock
            except EntityNotFound:
                return None  # not here (yet): peers are not told of it by this share (see Federation)
        return item

    def _check_sharer(self, node: str, shared: Entity | None) -> None:
        """Only the node that created an item shares it (grants and revokes): another peer's
        share would otherwise open an OWNER item to whoever it names."""
        owner = self._creator_of(shared) if shared is not None else None
        if owner is not None and node != owner:
            raise Forbidden(f"only {owner}, which created {shared.ENTITY} {shared.gid}, can share it; "
                            f"not {node}")

    def _creator_of(self, entity: Entity) -> str | None:
        if entity.creator is not None:
            return entity.creator
        first = [gid for gid, parents in entity.parents_of.items() if not parents]
        return self.transaction(first[0])["origin"] if first else None

    # --- plumbing ------------------------------------------------------
    def _new_tx(self, entity: str, entity_gid: str, kind: str, parents: list[str], author: str,
                scope: str, payload: dict[str, Any]) -> dict[str, Any]:
        tx = {
            "gid": str(uuid4()),
            "entity": entity,
            "entity_gid": entity_gid,
            "kind": kind,
            "parents": parents,
            "origin": self.node,
            "author": author,
            "created_at": self.clock(),
            "scope": scope,
            "payload": payload,
            "checksum": checksum(payload),
        }
        tx["signature"] = self.signer(signing_input(tx))
        return validate(tx)

    def _change(self, entity_gid: str, cls: type[Entity],
                change: Callable[[Any], dict[str, Any]]) -> Receipt:
        def prepare(group: dict[UUID, Entity]) -> tuple[Entity, dict[str, Any]]:
            aggregate = group.get(UUID(entity_gid)) or self._cached(entity_gid, cls, copy=False)
            group[aggregate.id] = aggregate  # forgotten from the cache if the save fails
            tx = change(aggregate)  # a refusal leaves the aggregate untouched
            aggregate.record(tx)
            return aggregate, tx

        return self._commit(prepare)

    def _store_new(self, tx: dict[str, Any]) -> Receipt:
        def prepare(group: dict[UUID, Entity]) -> tuple[Entity, dict[str, Any]]:
            return AGGREGATES[tx["entity"]].create(tx), tx

        return self._commit(prepare)

    # --- group commit ----------------------------------------------------
    def _commit(self, prepare: Prepare) -> Receipt:
        """Run one local command, committed together with whatever other threads queued meanwhile.

        The first thread to find no commit running leads: it takes every
        queued command, applies them in order (each sees the ones before it)
        and saves them in one database transaction, while the threads that
        queued them wait; then the next leader takes what queued meanwhile.
        A refused command fails alone; a failed save is retried command by
        command. So concurrent editors share one commit (one fsync, one
        projection) instead of queueing for one each.
        """
        command = _Command(prepare)
        with self._group:
            self._queue.append(command)
            while self._leading and not command.done:
                self._group.wait()
            if not command.done:
                self._leading = True
                batch, self._queue = self._queue, []
        if not command.done:
            try:
                with self._write_lock:
                    self._commit_group(batch)
            finally:
                with self._group:
                    self._leading = False
                    self._group.notify_all()
        if command.error is not None:
            raise command.error
        self.after_save()
        assert command.receipt is not None
        return command.receipt

    def _commit_group(self, batch: list[_Command]) -> None:
        try:
            if len(batch) > 1 and self._save_group(batch):
                return
            for command in batch:  # alone, or one by one after a failed group save
                if command.done:
                    continue
                for attempt in range(SAVE_ATTEMPTS):
                    try:
                        self._save_group([command])
                        break
                    except IntegrityError as e:
                        # Another process stored something meanwhile: start again from the store.
                        if attempt == SAVE_ATTEMPTS - 1:
                            command.finish(error=e)
                    except BaseException as e:  # reported to the command's own thread
                        command.finish(error=e)
                        break
        finally:
            for command in batch:
                if not command.done:
                    command.finish(error=RuntimeError("the commit of this command was interrupted"))

    def _save_group(self, batch: list[_Command]) -> bool:
        """Apply and save the commands in one transaction; False (nothing saved) if the save failed
        with more than one command in it, else the save's exception propagates."""
        group: dict[UUID, Entity] = {}
        events: list[Any] = []
        index: list[tuple[str, UUID, int]] = []
        applied: list[tuple[_Command, Receipt]] = []
        try:
            for command in batch:
                try:
                    aggregate, tx = command.prepare(group)
                except DomainError as e:
                    command.finish(error=e)
                    continue
                group[aggregate.id] = aggregate
                events.extend(aggregate.collect_events())
                index.append((tx["gid"], aggregate.id, aggregate.version))
                applied.append((command, Receipt(tx["entity_gid"], tx["gid"])))
            if events:
                # The aggregates (their events already collected) only let the library snapshot them.
                self.save(*group.values(), *events, tx_index=index)
        except BaseException:
            self._forget(group)
            if len(batch) > 1:
                return False  # the commands not refused are tried again, alone
            raise
        for command, receipt in applied:
            command.finish(receipt=receipt)
        return True


Prepare = Callable[[dict[UUID, Entity]], tuple[Entity, dict[str, Any]]]


class _Command:
    """A local command waiting for its group's commit."""

    def __init__(self, prepare: Prepare) -> None:
        self.prepare = prepare
        self.done = False
        self.receipt: Receipt | None = None
        self.error: BaseException | None = None

    def finish(self, *, receipt: Receipt | None = None, error: BaseException | None = None) -> None:
        self.receipt, self.error, self.done = receipt, error, True


def _item_state(title: str, markdown: str, tags: Iterable[str], forked_from: Iterable[str],
                deleted: bool) -> dict[str, Any]:
    return {
        "title": title,
        "markdown": markdown,
        "tags": sorted(set(tags)),
        "forked_from": sorted(set(forked_from)),
        "deleted": deleted,
    }


def _gid_of(data: Any) -> str:
    gid = data.get("gid") if isinstance(data, dict) else None
    return gid if isinstance(gid, str) else ""


def _refused(gid: str, error: DomainError) -> Outcome:
    return Outcome(gid, "refused", error.detail, error=error)
