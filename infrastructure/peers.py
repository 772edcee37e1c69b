"""Peers and their sync state, the pending area and seen node-token ids.

A peer row holds what the admin configured (base URL, sent and accepted
entity types, whether it is a relay whose word on other nodes' keys we
take) and what the node learned while syncing: the last outbox gid
pulled from it (written by the application in the same commit as the
transactions it applied), the push position (our outbox sequence it has
acknowledged, when it subscribed), the last success and error, and its
circuit breaker.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import IntegrityError

from domain.errors import EntityNotFound
from domain.federation import ENTITY_TYPES, Breaker
from infrastructure.persistence import Database

# How often (seconds, at most) a process drops the ids of expired node tokens from ``seen_jti``.
JTI_PRUNE_EVERY = 30.0

DDL = [
    "CREATE TABLE IF NOT EXISTS peers ("
    "name TEXT PRIMARY KEY, base_url TEXT NOT NULL, send_types TEXT NOT NULL, "
    "accept_types TEXT NOT NULL, created_at TEXT NOT NULL, pull_cursor TEXT, "
    "subscribed INTEGER NOT NULL DEFAULT 0, push_after BIGINT NOT NULL DEFAULT 0, "
    "last_success TEXT, last_error TEXT, breaker TEXT NOT NULL DEFAULT '{}', "
    "next_attempt DOUBLE PRECISION NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0, "
    "relay INTEGER NOT NULL DEFAULT 0, send_tags TEXT NOT NULL DEFAULT '[]')",
    "CREATE TABLE IF NOT EXISTS pending ("
    "gid TEXT PRIMARY KEY, sender TEXT NOT NULL, tx TEXT NOT NULL, missing TEXT NOT NULL, "
    "received_at TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 1)",
    "CREATE INDEX IF NOT EXISTS pending_by_sender ON pending (sender, received_at, gid)",
    "CREATE TABLE IF NOT EXISTS seen_jti (jti TEXT PRIMARY KEY, expires DOUBLE PRECISION NOT NULL)",
]


@dataclass
class Peer:
    name: str
    base_url: str
    send_types: tuple[str, ...]
    accept_types: tuple[str, ...]
    created_at: str = ""
    pull_cursor: str | None = None
    subscribed: bool = False
    push_after: int = 0
    last_success: str | None = None
    last_error: str | None = None
    breaker: Breaker = field(default_factory=Breaker)
    next_attempt: float = 0.0
    attempts: int = 0
    relay: bool = False  # its word on other origins' keys is taken (peer add --relay)
    send_tags: tuple[str, ...] = ()  # it subscribed to items with these tags only (names; none: every item)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Peer:
        return cls(
            name=row["name"],
            base_url=row["base_url"],
            send_types=tuple(json.loads(row["send_types"])),
            accept_types=tuple(json.loads(row["accept_types"])),
            created_at=row["created_at"],
            pull_cursor=row["pull_cursor"],
            subscribed=bool(row["subscribed"]),
            push_after=int(row["push_after"]),
            last_success=row["last_success"],
            last_error=row["last_error"],
            breaker=Breaker(**json.loads(row["breaker"] or "{}")),
            next_attempt=float(row["next_attempt"]),
            attempts=int(row["attempts"]),
            relay=bool(row["relay"]),
            send_tags=tuple(json.loads(row.get("send_tags") or "[]")),
        )


def entity_types(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Parse 'item,tag' (or a list); '' or 'none' means no types (one-way peering)."""
    values = text.split(",") if isinstance(text, str) else list(text)
    types = tuple(sorted({v.strip() for v in values if v.strip() and v.strip() != "none"}))
    unknown = [t for t in types if t not in ENTITY_TYPES]
    if unknown:
        raise ValueError(f"unknown entity type(s) {unknown}; use {', '.join(ENTITY_TYPES)}")
    return types


class PeerStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.changes = 0  # bumped by this process's changes to who is peered or subscribed
        self._jti_pruned = -JTI_PRUNE_EVERY  # (monotonic) when expired token ids were last dropped

    def create_tables(self) -> None:
        with self.db.transaction() as cur:
            for statement in DDL:
                cur.execute(statement)
            columns = cur.columns("peers")
            if "relay" not in columns:  # a store from before relays
                cur.execute("ALTER TABLE peers ADD COLUMN relay INTEGER NOT NULL DEFAULT 0")
            if "send_tags" not in columns:  # a store from before subscription filters
                cur.execute("ALTER TABLE peers ADD COLUMN send_tags TEXT NOT NULL DEFAULT '[]'")

    # --- peers -----------------------------------------------------------
    def add(self, peer: Peer) -> None:
        self.changes += 1
        self.db.write(
            "INSERT INTO peers (name, base_url, send_types, accept_types, created_at, relay) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET base_url = excluded.base_url, "
            "send_types = excluded.send_types, accept_types = excluded.accept_types, relay = excluded.relay",
            (peer.name, peer.base_url, json.dumps(list(peer.send_types)),
             json.dumps(list(peer.accept_types)), peer.created_at, int(peer.relay)),
        )

    def get(self, name: str) -> Peer:
        with self.db.read() as cur:
            row = cur.execute("SELECT * FROM peers WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise EntityNotFound(f"no peer {name}")
        return Peer.from_row(row)

    def find(self, name: str) -> Peer | None:
        try:
            return self.get(name)
        except EntityNotFound:
            return None

    def all(self) -> list[Peer]:
        with self.db.read() as cur:
            return [Peer.from_row(r) for r in cur.execute("SELECT * FROM peers ORDER BY name").fetchall()]

    def remove(self, name: str) -> None:
        self.changes += 1
        if self.db.write("DELETE FROM peers WHERE name = ?", (name,)) != 1:
            raise EntityNotFound(f"no peer {name}")

    def subscribe(self, name: str, subscribed: bool = True, tags: Sequence[str] = ()) -> None:
        """Push to the peer (or stop); ``tags``: only items carrying a tag of one of these names, pushed and
        pulled (none: every item it may see)."""
        self.changes += 1
        self.db.write("UPDATE peers SET subscribed = ?, send_tags = ? WHERE name = ?",
                      (int(subscribed), json.dumps(sorted(set(tags))), name))

    def set_pull_cursor(self, name: str, cursor: str | None) -> None:
        self.db.write("UPDATE peers SET pull_cursor = ? WHERE name = ?", (cursor, name))

    def acknowledge(self, name: str, seq: int) -> None:
        """The peer has everything we pushed up to our outbox sequence ``seq``."""
        self.db.write("UPDATE peers SET push_after = ? WHERE name = ? AND push_after < ?", (seq, name, seq))

    def succeeded(self, name: str, when: str, acknowledged: int | None = None) -> None:
        """The peer answered; with ``acknowledged``, it has everything up to that outbox sequence too (as
        ``acknowledge``, in the same statement: one commit per push, not two)."""
        moved = () if acknowledged is None else (acknowledged, acknowledged)
        self.db.write(
            "UPDATE peers SET last_success = ?, breaker = ?, attempts = 0, next_attempt = 0"
            + (", push_after = CASE WHEN push_after < ? THEN ? ELSE push_after END" if moved else "")
            + " WHERE name = ?",
            (when, json.dumps(Breaker().as_dict()), *moved, name),
        )

    def failed(self, name: str, when: str, error: str, breaker: Breaker, next_attempt: float) -> None:
        self.db.write(
            "UPDATE peers SET last_error = ?, breaker = ?, attempts = attempts + 1, next_attempt = ? "
            "WHERE name = ?",
            (f"{when} {error}"[:500], json.dumps(breaker.as_dict()), next_attempt, name),
        )

    def retry_now(self, name: str) -> None:
        """Forget the backoff and close the breaker, so the next round tries at once."""
        self.changes += 1
        self.get(name)
        self.db.write("UPDATE peers SET breaker = ?, next_attempt = 0, attempts = 0 WHERE name = ?",
                      (json.dumps(Breaker().as_dict()), name))

    # --- pending area ------------------------------------------------------
    def pending(self, sender: str, limit: int = 1000) -> list[dict[str, Any]]:
        """A sender's held transactions, oldest first (one sender's rows never hide another's)."""
        with self.db.read() as cur:
            rows = cur.execute("SELECT * FROM pending WHERE sender = ? ORDER BY received_at, gid LIMIT ?",
                               (sender, limit)).fetchall()
        return [dict(r, tx=json.loads(r["tx"]), missing=json.loads(r["missing"])) for r in rows]

    def pending_senders(self) -> list[str]:
        with self.db.read() as cur:
            return [r["sender"] for r in cur.execute("SELECT DISTINCT sender FROM pending ORDER BY sender").fetchall()]

    def pending_count(self, sender: str | None = None) -> int:
        with self.db.read() as cur:
            if sender is None:
                return int(cur.execute("SELECT COUNT(*) AS n FROM pending").fetchone()["n"])
            return int(cur.execute("SELECT COUNT(*) AS n FROM pending WHERE sender = ?", (sender,)).fetchone()["n"])

    # --- node-token replay guard ---------------------------------------------
    def remember_jti(self, jti: str, expires: float) -> bool:
        """False if this token id was seen before (a replay). Ids of expired tokens are dropped every
        ``JTI_PRUNE_EVERY`` seconds (a token is refused once expired, whether its id is kept or not)."""
        now = time.monotonic()
        if now >= self._jti_pruned + JTI_PRUNE_EVERY:
            self._jti_pruned = now
            self.db.write("DELETE FROM seen_jti WHERE expires < ?", (time.time() - 120,))
        try:
            self.db.write("INSERT INTO seen_jti (jti, expires) VALUES (?, ?)", (jti, expires))
        except IntegrityError:
            return False
        return True
