"""Federation, server side: what a node gives its peers and takes from them.

- Outbox pages: transactions after a gid, in outbox order, that the caller
  may see now (visibility rules in ``domain/federation.py``, read from the
  projections). Only what the projector has reached is served, so a
  transaction is never skipped for lack of a read model. Each page says
  ``last``: the last outbox gid examined (visible or not), which is where
  the caller's cursor goes, and ``more``.
- Fetch: named transactions (optionally with their entities' whole
  histories, for missing ancestors), again only what the caller may see.
- Inbox: a batch from a peer; types the peering does not accept are
  refused, everything else goes through the application (verify against
  the origin's keys, dedup, equivocation), missing ancestors are fetched
  from the sender (bounded) and what still lacks parents is held in the
  pending area in the same commit. Keys of an unknown origin are asked of
  the peer that relayed the transaction and pinned on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from domain.application import Outcome
from domain.errors import BatchRefused, Forbidden, Gone, Overloaded, TooLarge, TransactionNotFound
from domain.federation import ENTITY_TYPES, Audience, may_see
from infrastructure.federation_client import FederationClient, PeerError
from infrastructure.signing import kid_of
from projections.projector import decode

OUTBOX_COUNT = 500
OUTBOX_BYTES = 4 * 1024 * 1024
GIDS_COUNT = 5000
SCAN_LIMIT = 20_000  # outbox entries examined per request, visible or not
FETCH_MAX = 5000
FETCH_BYTES = 2 * OUTBOX_BYTES  # a fetch answers at most this much (oldest first), whatever the count
INBOX_MAX = 1000
ANCESTOR_ROUNDS = 20


class Federation:
    def __init__(self, node: Any, client: FederationClient, *, same_domain: Callable[[str, str], bool],
                 inbox_concurrency: int = 2) -> None:
        self.node = node
        self.app = node.app
        self.peers = node.peers
        self.client = client
        self.same_domain = same_domain
        self._inbox_slots = threading.BoundedSemaphore(inbox_concurrency)

    # --- who is asking ------------------------------------------------------
    def audience(self, caller: str | None) -> Audience:
        if caller is None:
            return Audience(None, ENTITY_TYPES)
        return Audience(caller, self.peers.get(caller).send_types)

    def visible(self, audience: Audience, txs: Sequence[dict[str, Any]]) -> list[bool]:
        """For each transaction: may this audience see its entity now?"""
        items = {t["entity_gid"] for t in txs if t["entity"] == "item"}
        items |= {t["payload"]["item"] for t in txs if t["entity"] == "share"}
        tags = {t["entity_gid"] for t in txs if t["entity"] == "tag"}
        scopes, shared = self._item_access(items)
        tag_scopes = self._scopes("tags", "tag_gid", tags)
        own = self.node.config.host
        result = []
        for tx in txs:
            entity = tx["entity"]
            if entity == "item":
                key = tx["entity_gid"]
                ok = may_see("item", scopes.get(key), shared.get(key, ()), own, audience, self.same_domain)
            elif entity == "tag":
                ok = may_see("tag", tag_scopes.get(tx["entity_gid"]), (), own, audience, self.same_domain)
            else:
                key = tx["payload"]["item"]
                peers = {*shared.get(key, ()), tx["payload"]["peer"]}
                ok = may_see("share", scopes.get(key), peers, own, audience, self.same_domain)
            result.append(ok)
        return result

    def _scopes(self, table: str, key: str, gids: set[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        ordered = sorted(gids)
        with self.node.db.read() as cur:
            for i in range(0, len(ordered), 500):
                chunk = ordered[i : i + 500]
                rows = cur.execute(f"SELECT {key} AS k, scope FROM {table} WHERE {key} IN "
                                   f"({','.join('?' * len(chunk))})", chunk).fetchall()
                found.update({r["k"]: r["scope"] for r in rows})
        return found

    def _item_access(self, items: set[str]) -> tuple[dict[str, str], dict[str, set[str]]]:
        scopes = self._scopes("documents", "item_gid", items)
        shared: dict[str, set[str]] = {}
        ordered = sorted(items)
        with self.node.db.read() as cur:
            for i in range(0, len(ordered), 500):
                chunk = ordered[i : i + 500]
                # Only the item's creator may share it: a share from anyone else opens nothing.
                rows = cur.execute("SELECT s.item_gid AS item_gid, s.peer AS peer FROM shares s "
                                   "JOIN documents d ON d.item_gid = s.item_gid "
                                   "WHERE s.revoked = 0 AND s.origin = d.origin AND s.item_gid IN "
                                   f"({','.join('?' * len(chunk))})", chunk).fetchall()
                for r in rows:
                    shared.setdefault(r["item_gid"], set()).add(r["peer"])
        return scopes, shared

    # --- outbox ---------------------------------------------------------------
    def start_of(self, after: str | None) -> int:
        if after is None:
            return 0
        try:
            return self.app.sequence_of(after)
        except TransactionNotFound:
            raise Gone(f"unknown 'after' gid {after}: this node's outbox has no such transaction; "
                       "list gids (GET /federation/outbox/gids) and fetch what you lack") from None

    def scan(self, audience: Audience, start: int, *, max_count: int, max_bytes: int,
             skip_origin: bool = False) -> tuple[list[tuple[int, dict[str, Any], int]], int, bool]:
        """Visible entries after ``start``: ([(seq, tx, size)], last examined seq, more)."""
        ceiling = self.node.projector.position()
        taken: list[tuple[int, dict[str, Any], int]] = []
        seen: set[str] = set()
        position, examined, total = start, 0, 0
        while position < ceiling and examined < SCAN_LIMIT:
            chunk = self.app.recorder.select_notifications(position, 1000, stop=ceiling,
                                                           inclusive_of_start=False)
            if not chunk:
                break
            entries = [(n.id, decode(n.state), len(n.state)) for n in chunk]
            flags = self.visible(audience, [tx for _, tx, _ in entries])
            for (seq, tx, size), ok in zip(entries, flags, strict=True):
                if ok and tx["gid"] not in seen and not (skip_origin and tx["origin"] == audience.name):
                    # A share naming the caller brings the item's history with it: that
                    # history may lie behind the caller's cursor, invisible until now.
                    unit = [e for e in self._shared_history(audience, tx, skip_origin) if e[1]["gid"] not in seen]
                    unit.append((seq, tx, size))
                    unit_bytes = sum(e[2] for e in unit)
                    if taken and (len(taken) + len(unit) > max_count or total + unit_bytes > max_bytes):
                        return taken, position, True  # the server-chosen batch is full
                    taken.extend(unit)
                    seen.update(e[1]["gid"] for e in unit)
                    total += unit_bytes
                position = seq
                examined += 1
        return taken, position, position < ceiling

    def _shared_history(self, audience: Audience, tx: dict[str, Any],
                        skip_origin: bool) -> list[tuple[int, dict[str, Any], int]]:
        """For a live share naming the audience: the shared item's stored history it may now see."""
        if tx["entity"] != "share" or audience.name is None or tx["payload"]["peer"] != audience.name \
                or tx["payload"]["revoked"]:
            return []
        located = sorted(self.app.recorder.locate(self._with_histories([tx["gid"]])), key=lambda r: r["seq"])
        entries = [(int(r["seq"]), decode(bytes(r["state"])), len(r["state"])) for r in located
                   if r["gid"] != tx["gid"]]
        flags = self.visible(audience, [t for _, t, _ in entries])
        return [e for e, ok in zip(entries, flags, strict=True)
                if ok and not (skip_origin and e[1]["origin"] == audience.name)]

    def outbox_page(self, caller: str | None, after: str | None) -> dict[str, Any]:
        audience = self.audience(caller)
        start = self.start_of(after)
        taken, last, more = self.scan(audience, start, max_count=OUTBOX_COUNT, max_bytes=OUTBOX_BYTES)
        return {"transactions": [tx for _, tx, _ in taken], "more": more, "last": self._gid_at(last, after)}

    def gids_page(self, caller: str | None, after: str | None) -> dict[str, Any]:
        audience = self.audience(caller)
        start = self.start_of(after)
        taken, last, more = self.scan(audience, start, max_count=GIDS_COUNT, max_bytes=1 << 62)
        return {"gids": [tx["gid"] for _, tx, _ in taken], "more": more, "last": self._gid_at(last, after)}

    def _gid_at(self, seq: int, fallback: str | None) -> str | None:
        if seq == 0:
            return fallback
        notifications = self.app.recorder.select_notifications(seq, 1)
        return decode(notifications[0].state)["gid"] if notifications else fallback

    # --- fetch ----------------------------------------------------------------
    def fetch(self, caller: str | None, gids: Sequence[str], ancestors: bool = False) -> list[dict[str, Any]]:
        if len(gids) > FETCH_MAX:
            raise TooLarge(f"at most {FETCH_MAX} gids per fetch")
        wanted = list(dict.fromkeys(gids))
        if ancestors:
            wanted = self._with_histories(wanted)
        rows = sorted(self.app.recorder.locate(wanted), key=lambda r: r["seq"])[:FETCH_MAX]
        rows = _first_bytes(rows, FETCH_BYTES)
        txs = [decode(bytes(r["state"])) for r in rows]
        flags = self.visible(self.audience(caller), txs)
        return [tx for tx, ok in zip(txs, flags, strict=True) if ok]

    def _with_histories(self, gids: list[str]) -> list[str]:
        """The gids and the whole histories of their entities (first ``FETCH_MAX`` in outbox order).

        An item's history includes its shares and a share's includes its item:
        each becomes visible to a peer together with the other, so a peer that
        learns of one late (a share granted, a scope widened) gets both.
        """
        with self.node.db.read() as cur:
            entities = set(_column(cur, "SELECT entity_gid FROM transactions WHERE gid IN ({marks})", gids))
            items = entities | set(_column(cur, "SELECT item_gid FROM shares WHERE share_gid IN ({marks})", entities))
            entities |= items | set(_column(cur, "SELECT share_gid FROM shares WHERE item_gid IN ({marks})", items))
            rows = _rows(cur, "SELECT seq, gid FROM transactions WHERE entity_gid IN ({marks})", entities)
        history = [r["gid"] for r in sorted(rows, key=lambda r: r["seq"])[:FETCH_MAX]]
        return list(dict.fromkeys(history + list(gids)))

    def keys_for(self, origin: str) -> dict[str, Any]:
        """The keys this node uses to verify ``origin`` (for peers that get its relays)."""
        if origin == self.node.name:
            return {"name": origin, "jwks": self.node.keyring.jwks()}
        keyset = self.node.keys.keyset(origin)
        if not len(keyset):
            raise TransactionNotFound(f"no keys known for {origin}")
        return {"name": origin, "jwks": keyset.jwks()}

    # --- inbox ----------------------------------------------------------------
    def inbox(self, sender: str, txs: Sequence[Any]) -> list[dict[str, Any]]:
        if len(txs) > INBOX_MAX:
            raise TooLarge(f"at most {INBOX_MAX} transactions per inbox batch")
        if not self._inbox_slots.acquire(blocking=False):
            raise Overloaded("inbox busy: retry later", retry_after=1)
        try:
            peer = self.peers.get(sender)
            outcomes = self.receive_from(peer.name, peer.base_url, peer.accept_types, txs)
        finally:
            self._inbox_slots.release()
        results = [_describe(o) for o in outcomes]
        if outcomes and all(o.status == "refused" for o in outcomes):
            # Nothing taken: the answer is an error (a problem document), still with every reason.
            statuses = {o.error.status if o.error is not None else 422 for o in outcomes}
            raise BatchRefused(f"every transaction was refused; the first: {outcomes[0].reason}",
                               statuses.pop() if len(statuses) == 1 else 422, results)
        return results

    def receive_from(self, sender: str, base_url: str, accept: Sequence[str], txs: Sequence[Any],
                     cursor: tuple[str, str] | None = None) -> list[Outcome]:
        """Receive a batch from a peer: type filter, keys on demand, ancestors, pending."""
        refused: dict[int, Outcome] = {}
        wanted: list[Any] = []
        for i, tx in enumerate(txs):
            entity = tx.get("entity") if isinstance(tx, dict) else None
            if entity not in accept:
                gid = tx.get("gid", "") if isinstance(tx, dict) else ""
                reason = f"entity type {entity!r} is not accepted from {sender}"
                refused[i] = Outcome(str(gid), "refused", reason, error=Forbidden(reason))
            else:
                wanted.append(tx)
        self._learn_keys(sender, base_url, wanted)
        outcomes = self.app.receive(wanted, sender=sender, cursor=cursor)
        if any(o.status == "pending" for o in outcomes):
            self._fetch_ancestors(sender, base_url, [o.gid for o in outcomes if o.status == "pending"])
            outcomes = [self._settled(o) for o in outcomes]
        merged, it = [], iter(outcomes)
        for i in range(len(txs)):
            merged.append(refused[i] if i in refused else next(it))
        return merged

    def _settled(self, outcome: Outcome) -> Outcome:
        if outcome.status != "pending":
            return outcome
        stored = self.app.transactions([outcome.gid])
        return Outcome(outcome.gid, "stored") if stored else outcome

    def _learn_keys(self, sender: str, base_url: str, txs: Sequence[Any]) -> None:
        """Pin keys of origins we cannot verify yet, asked of the sender (trust on first use)."""
        origins = {tx.get("origin") for tx in txs if isinstance(tx, dict) and isinstance(tx.get("origin"), str)}
        for origin in origins:
            if origin == self.node.name:
                continue
            kids = {kid_of(tx.get("signature")) for tx in txs if isinstance(tx, dict) and tx.get("origin") == origin}
            if kids <= set(self.node.keys.keyset(origin).kids):
                continue
            if kids <= set(self.node.keys.keyset(origin, reload=True).kids):
                continue
            try:
                if origin == sender:
                    jwks = self.client.jwks(base_url)
                else:
                    jwks = self.client.keys_of(sender, base_url, origin)["jwks"]
                self.node.keys.pin(origin, jwks)
            except (PeerError, ValueError, KeyError, TypeError):
                continue  # the transactions will be refused as signed by an unknown key

    def _fetch_ancestors(self, sender: str, base_url: str, gids: list[str]) -> None:
        """Fetch the histories of held transactions from the sender and retry them."""
        for _ in range(ANCESTOR_ROUNDS):
            pending = [p for p in self.peers.pending() if p["gid"] in set(gids)]
            if not pending:
                return
            try:
                fetched = self.client.fetch(sender, base_url, [p["gid"] for p in pending], ancestors=True)
            except PeerError:
                return  # stays pending; retried later
            self._learn_keys(sender, base_url, fetched)
            before = self.peers.pending_count()
            self.app.receive(fetched, sender=sender)
            self.retry_pending()
            if self.peers.pending_count() >= before:
                return

    def fetch_pending(self, sender: str, base_url: str) -> None:
        """Ask a peer again for the ancestors of what it sent that still waits for them.

        The first fetch (at receive time) may have failed; without this, a held
        transaction whose parents lie behind our cursor would wait forever.
        """
        gids = [p["gid"] for p in self.peers.pending() if p["sender"] == sender]
        if gids:
            self._fetch_ancestors(sender, base_url, gids)

    def retry_pending(self) -> int:
        """Apply held transactions whose parents have arrived; returns how many were settled."""
        rows = self.peers.pending()
        if not rows:
            return 0
        by_sender: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_sender.setdefault(row["sender"], []).append(row["tx"])
        settled = 0
        for sender, txs in by_sender.items():
            outcomes = self.app.receive(txs, sender=sender, from_pending=True)
            settled += sum(o.status != "pending" for o in outcomes)
        return settled


def _rows(cur: Any, sql: str, values: Iterable[str]) -> list[dict[str, Any]]:
    """Rows of ``sql`` (one ``IN ({marks})``) over ``values``, in chunks of 500."""
    ordered = sorted(values)
    out: list[dict[str, Any]] = []
    for i in range(0, len(ordered), 500):
        chunk = ordered[i : i + 500]
        out.extend(cur.execute(sql.format(marks=",".join("?" * len(chunk))), chunk).fetchall())
    return out


def _column(cur: Any, sql: str, values: Iterable[str]) -> list[Any]:
    return [next(iter(row.values())) for row in _rows(cur, sql, values)]


def _describe(outcome: Outcome) -> dict[str, Any]:
    out: dict[str, Any] = {"gid": outcome.gid, "status": outcome.status}
    if outcome.reason:
        out["reason"] = outcome.reason
    if outcome.missing:
        out["missing"] = outcome.missing
    return out


def _first_bytes(rows: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The leading rows whose stored states add up to at most ``limit`` bytes (at least one row)."""
    total = 0
    for i, row in enumerate(rows):
        total += len(row["state"])
        if total > limit and i > 0:
            return rows[:i]
    return rows
