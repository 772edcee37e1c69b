"""The outbox, read for peers: what this node serves, in outbox order, to whom.

- Pages: transactions after a position that the caller may see now
  (visibility rules in ``domain/federation.py``, read from the projections).
  Only what the projector has reached is served, so a transaction is never
  skipped for lack of a read model. A page ends at the last outbox entry
  examined (visible or not): that is where the caller's cursor goes, sealed
  for the caller (``infrastructure/signing/cursor_seal.py``), so the cursor
  never names an entry the caller may not see.
- ``after`` is such a cursor or a gid the caller may see; anything else
  (a gid it may not see, one never stored, another caller's cursor) is the
  same ``Gone``, so answers do not tell hidden entries from absent ones.
- A share naming the caller brings the item's history with it: that history
  may lie behind the caller's cursor, invisible to it until now.
- Fetch: named transactions (optionally with their entities' whole
  histories, for missing ancestors), again only what the caller may see,
  oldest first and bounded in count and bytes. The bounds apply to what the
  caller may see only: hidden transactions never crowd visible ones out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from eventsourcing.persistence import Notification

from domain.application import NodeApplication, TransactionIndex
from domain.errors import Gone
from domain.federation import ENTITY_TYPES, Audience, may_see
from infrastructure.access import AccessReader
from infrastructure.peers import Peer, PeerStore
from infrastructure.signing import CursorSeal
from projections.projector import decode

OUTBOX_COUNT = 500
OUTBOX_BYTES = 4 * 1024 * 1024
GIDS_COUNT = 5000
SCAN_LIMIT = 20_000  # outbox entries examined per request, visible or not
FETCH_MAX = 5000
HAVE_MAX = 1000  # gids a fetch may name as held (the heads of what the caller holds of those histories)
FETCH_BYTES = 2 * OUTBOX_BYTES  # a fetch answers at most this much (oldest first), whatever the count
READ_CHUNK = 100  # stored transactions read at a time while a fetch is answered
UNKNOWN_AFTER = ("unknown 'after' gid {}: no transaction of this node's outbox that you may see; "
                 "list gids (GET /federation/outbox/gids) and fetch what you lack")
UNKNOWN_CURSOR = ("'after' is not a cursor this node gave you (altered, another caller's, or from before "
                  "its outbox changed); list gids (GET /federation/outbox/gids) and fetch what you lack")


class OutboxStore(TransactionIndex, Protocol):
    """The event store in outbox order (the library's notifications), with its gid index."""

    def select_notifications(self, start: int | None, limit: int, stop: int | None = None,
                             topics: Sequence[str] = (), *,
                             inclusive_of_start: bool = True) -> Sequence[Notification]: ...


@dataclass(frozen=True)
class OutboxEntry:
    seq: int  # position in the outbox
    tx: dict[str, Any]
    size: int  # bytes as stored

    @property
    def gid(self) -> str:
        return self.tx["gid"]


@dataclass(frozen=True)
class Scan:
    """Visible entries after a position, the last position examined, and whether more follow."""

    entries: list[OutboxEntry]
    last: int
    more: bool


@dataclass(frozen=True)
class Page:
    """What follows a caller's cursor: the entries it may see, its next cursor, more."""

    entries: list[OutboxEntry]
    last: str
    more: bool


class Outbox:
    def __init__(self, app: NodeApplication, store: OutboxStore, access: AccessReader, peers: PeerStore,
                 projected: Callable[[], int], cursors: CursorSeal, *, own_host: str,
                 same_domain: Callable[[str, str], bool]) -> None:
        self.app = app
        self.store = store
        self.cursors = cursors
        self.access = access
        self.peers = peers
        self.projected = projected  # the outbox position the read models have reached
        self.own_host = own_host
        self.same_domain = same_domain
        self.filter = TagFilter(access)

    # --- who is asking ------------------------------------------------------
    def audience(self, caller: str | None) -> Audience:
        if caller is None:
            return Audience(None, ENTITY_TYPES)
        return self.audience_of(self.peers.get(caller))

    @staticmethod
    def audience_of(peer: Peer) -> Audience:
        return Audience(peer.name, peer.send_types, relay=peer.relay, tags=frozenset(peer.send_tags))

    def visible(self, audience: Audience, txs: Sequence[dict[str, Any]]) -> list[bool]:
        """For each transaction: may this audience see its entity now?"""
        items = {t["entity_gid"] for t in txs if t["entity"] == "item"}
        items |= {t["payload"]["item"] for t in txs if t["entity"] in ("share", "attachment")}
        access = self.access.item_access(items)
        tag_scopes = self.access.tag_scopes({t["entity_gid"] for t in txs if t["entity"] == "tag"})
        scopes, shared, owners = access.scopes, access.shared, access.owners
        result = []
        for tx in txs:
            entity = tx["entity"]
            if entity == "item":
                key = tx["entity_gid"]
                ok = self._may_see("item", scopes.get(key), shared.get(key, ()), audience, owners.get(key))
            elif entity == "tag":
                ok = self._may_see("tag", tag_scopes.get(tx["entity_gid"]), (), audience)
            elif entity == "attachment":  # as visible as its item
                key = tx["payload"]["item"]
                ok = self._may_see("attachment", scopes.get(key), shared.get(key, ()), audience, owners.get(key))
            else:
                key = tx["payload"]["item"]
                ok = self._may_see("share", scopes.get(key), {*shared.get(key, ()), tx["payload"]["peer"]}, audience,
                                   owners.get(key))
            result.append(ok)
        return result

    def _may_see(self, entity: str, scope: str | None, shared: Iterable[str], audience: Audience,
                 owner: str | None = None) -> bool:
        return may_see(entity, scope, shared, self.own_host, audience, self.same_domain, owner)

    def _visible_entries(self, audience: Audience, entries: list[OutboxEntry]) -> list[OutboxEntry]:
        flags = self.visible(audience, [e.tx for e in entries])
        return [e for e, ok in zip(entries, flags, strict=True) if ok]

    # --- pages ----------------------------------------------------------------
    def start_of(self, audience: Audience, after: str | None) -> int:
        """The outbox position after which a page for ``audience`` starts."""
        if after is None:
            return 0
        if self.cursors.sealed(after):
            position = self.cursors.open(after, audience.name)
            # The entry must still be there: a store restored from a backup may not hold it.
            if position is None or (position[0] and self._gid_at(position[0]) != position[1]):
                raise Gone(UNKNOWN_CURSOR)
            return position[0]
        rows = self.store.locate([after])
        if not rows or not self.visible(audience, [decode(bytes(rows[0]["state"]))])[0]:
            raise Gone(UNKNOWN_AFTER.format(after))
        return int(rows[0]["seq"])

    def scan(self, audience: Audience, start: int, *, max_count: int, max_bytes: int,
             skip_origin: bool = False) -> Scan:
        """Visible entries after ``start`` (not the audience's own ones with ``skip_origin``)."""
        ceiling = self.projected()
        taken: list[OutboxEntry] = []
        seen: set[str] = set()
        position, examined, total = start, 0, 0
        while position < ceiling and examined < SCAN_LIMIT:
            chunk = self.store.select_notifications(position, 1000, stop=ceiling, inclusive_of_start=False)
            if not chunk:
                break
            entries = [OutboxEntry(n.id, decode(n.state), len(n.state)) for n in chunk]
            flags = self.visible(audience, [e.tx for e in entries])
            wanted = self.filter.wanted(audience, [e.tx for e in entries])
            for entry, ok, want in zip(entries, flags, wanted, strict=True):
                if ok and want and entry.gid not in seen and not _skipped(entry, audience, skip_origin):
                    unit = [e for e in self._shared_history(audience, entry.tx, skip_origin) if e.gid not in seen]
                    unit.append(entry)
                    unit_bytes = sum(e.size for e in unit)
                    if taken and (len(taken) + len(unit) > max_count or total + unit_bytes > max_bytes):
                        return Scan(taken, position, True)  # the server-chosen batch is full
                    taken.extend(unit)
                    seen.update(e.gid for e in unit)
                    total += unit_bytes
                position = entry.seq
                examined += 1
        return Scan(taken, position, position < ceiling)

    def _shared_history(self, audience: Audience, tx: dict[str, Any], skip_origin: bool) -> list[OutboxEntry]:
        """For a live share naming the audience: the shared item's stored history it may now see."""
        if tx["entity"] != "share" or audience.name is None or tx["payload"]["peer"] != audience.name \
                or tx["payload"]["revoked"]:
            return []
        located = sorted(self.store.locate(self.with_histories([tx["gid"]])), key=lambda r: r["seq"])
        entries = [OutboxEntry(int(r["seq"]), decode(bytes(r["state"])), len(r["state"])) for r in located
                   if r["gid"] != tx["gid"]]
        return [e for e in self._visible_entries(audience, entries) if not _skipped(e, audience, skip_origin)]

    def page(self, caller: str | None, after: str | None, *, max_count: int, max_bytes: int) -> Page:
        audience = self.audience(caller)
        scan = self.scan(audience, self.start_of(audience, after), max_count=max_count, max_bytes=max_bytes)
        return Page(scan.entries, self.cursors.seal(scan.last, self._gid_at(scan.last), audience.name), scan.more)

    def _gid_at(self, seq: int) -> str | None:
        """The gid of the outbox entry at ``seq`` (None at the start, or if there is none)."""
        return self.access.gid_at(seq) if seq else None

    # --- fetch ----------------------------------------------------------------
    def fetch(self, caller: str | None, gids: Sequence[str], ancestors: bool = False,
              have: Sequence[str] = ()) -> list[dict[str, Any]]:
        """The named transactions the caller may see; with ``ancestors``, their entities' histories too, less
        what ``have`` and its ancestors hold; oldest first, bounded (``FETCH_MAX``, ``FETCH_BYTES``)."""
        audience = self.audience(caller)
        wanted = list(dict.fromkeys(gids))
        if ancestors:
            # Only histories of what the caller may see: a hidden entity's must not take up the bound.
            wanted = self.with_histories([tx["gid"] for tx in self._read_visible(audience, wanted, None)], have)
        return self._read_visible(audience, wanted, FETCH_BYTES)

    def _read_visible(self, audience: Audience, gids: list[str], max_bytes: int | None) -> list[dict[str, Any]]:
        """The first ``FETCH_MAX`` of these transactions that ``audience`` may see, in outbox order, at most
        ``max_bytes`` (at least one); read a chunk at a time, so what it may not see is never held for long."""
        ordered = self.access.in_outbox_order(gids)
        out: list[dict[str, Any]] = []
        total = 0
        for i in range(0, len(ordered), READ_CHUNK):
            rows = sorted(self.store.locate(ordered[i:i + READ_CHUNK]), key=lambda r: r["seq"])
            txs = [(decode(bytes(r["state"])), len(r["state"])) for r in rows]
            flags = self.visible(audience, [tx for tx, _ in txs])
            for (tx, size), ok in zip(txs, flags, strict=True):
                if not ok:
                    continue
                total += size
                if len(out) == FETCH_MAX or (max_bytes is not None and total > max_bytes and out):
                    return out
                out.append(tx)
        return out

    def may_have_blob(self, caller: str | None, sha256: str) -> bool:
        """Whether the caller may see an attachment whose bytes hash to ``sha256`` (as visible as its item)."""
        audience = self.audience(caller)
        attached = [{"entity": "attachment", "entity_gid": gid, "payload": {"item": item}}
                    for gid, item in self.access.attachments_with(sha256)]
        return any(self.visible(audience, attached))

    def with_histories(self, gids: list[str], have: Sequence[str] = ()) -> list[str]:
        """The gids and the histories of their entities but for ``have`` and its ancestors (first ``FETCH_MAX``
        in outbox order)."""
        return list(dict.fromkeys(self.access.entity_histories(gids, FETCH_MAX, have) + gids))


def _skipped(entry: OutboxEntry, audience: Audience, skip_origin: bool) -> bool:
    """Not pushed back to its own origin."""
    return skip_origin and entry.tx["origin"] == audience.name


class TagFilter:
    """A subscriber's tag filter: items (and their shares and attachments) that carry a tag of the names it
    gave; tags pass.

    An item that starts to carry such a tag is sent from that transaction on; its earlier history follows
    the way any missing parents do: the subscriber holds the transaction and fetches its ancestors, which a
    fetch answers by visibility alone, unfiltered."""

    def __init__(self, access: AccessReader) -> None:
        self.access = access

    def wanted(self, audience: Audience, txs: Sequence[dict[str, Any]]) -> list[bool]:
        if not audience.tags:
            return [True] * len(txs)
        chosen = self.access.tags_named(audience.tags)
        about = {tx["payload"]["item"] for tx in txs if tx["entity"] in ("share", "attachment")}
        current = self.access.item_tags(about) if about else {}
        return [bool(chosen & set(tx["payload"]["tags"])) if tx["entity"] == "item"
                else bool(chosen & current.get(tx["payload"]["item"], set())) if tx["entity"] != "tag"
                else True for tx in txs]
