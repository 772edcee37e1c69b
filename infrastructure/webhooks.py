"""Outgoing webhooks an admin registers: where to POST which notices, and how each delivery went.

A webhook row holds what the admin gave (the URL, the notice kinds) and the secret the node made for it (the
receiver checks each body's HMAC with it; shown once, when the webhook is added, never listed), and what the
delivery worker (``webhook_delivery.py``) learned: its position in the outbox (the last transaction sequence
whose notices the receiver acknowledged, or that held none of its kinds), the last success and error, the
failed attempts since the last success and when to try again, and how many notices it was given.

A new webhook starts at the current end of the outbox: it is told what happens after it was registered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from domain.errors import EntityNotFound
from domain.transaction import utc_now
from infrastructure.notices import KINDS
from infrastructure.persistence import Database

DDL = ["CREATE TABLE IF NOT EXISTS webhooks ("
       "id TEXT PRIMARY KEY, url TEXT NOT NULL, events TEXT NOT NULL, secret TEXT NOT NULL, "
       "position BIGINT NOT NULL DEFAULT 0, created_at TEXT NOT NULL, last_success TEXT, last_error TEXT, "
       "attempts INTEGER NOT NULL DEFAULT 0, next_attempt DOUBLE PRECISION NOT NULL DEFAULT 0, "
       "delivered BIGINT NOT NULL DEFAULT 0)"]
MAX_URL = 2000


@dataclass(frozen=True)
class Webhook:
    id: str
    url: str
    events: tuple[str, ...]
    secret: str
    position: int  # the outbox sequence up to which the receiver has what concerns it
    created_at: str
    last_success: str | None = None
    last_error: str | None = None  # "<when> <what>", cut to 500 characters
    attempts: int = 0  # failed attempts since the last success
    next_attempt: float = 0.0  # epoch seconds: not tried again before
    delivered: int = 0  # notices the receiver acknowledged

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Webhook:
        return cls(id=row["id"], url=row["url"], events=tuple(json.loads(row["events"])), secret=row["secret"],
                   position=int(row["position"]), created_at=row["created_at"], last_success=row["last_success"],
                   last_error=row["last_error"], attempts=int(row["attempts"]),
                   next_attempt=float(row["next_attempt"]), delivered=int(row["delivered"]))

    def status(self) -> dict[str, Any]:
        """What an admin may see: everything but the secret."""
        return {"id": self.id, "url": self.url, "events": list(self.events), "position": self.position,
                "created_at": self.created_at, "last_success": self.last_success, "last_error": self.last_error,
                "attempts": self.attempts, "delivered": self.delivered,
                "next_attempt": _timestamp(self.next_attempt) if self.attempts else None}


def _timestamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_url(url: str) -> str:
    """An http(s) URL with a host, said back as given; else ValueError in one line."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ValueError(f"not a URL: {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > MAX_URL or " " in url:
        raise ValueError(f"a webhook URL must be http(s)://host[:port]/path (at most {MAX_URL} characters): {url!r}")
    return url


def event_kinds(text: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Parse 'conflict.opened,item.edited' (or a list); None or empty: every kind. Unknown: ValueError."""
    values = text.split(",") if isinstance(text, str) else list(text or [])
    kinds = tuple(sorted({v.strip() for v in values if v.strip()}))
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown event kind(s) {', '.join(unknown)}; use {', '.join(KINDS)}")
    return kinds or KINDS


def signature(secret: str, body: bytes) -> str:
    """The ``X-Fedsync-Signature`` header's value: ``sha256=`` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create_tables(self) -> None:
        with self.db.transaction() as cur:
            for statement in DDL:
                cur.execute(statement)

    def add(self, url: str, events: str | list[str] | tuple[str, ...] | None = None) -> Webhook:
        """Register a webhook at the current end of the outbox; it holds its new secret."""
        webhook_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        url, kinds = check_url(url), event_kinds(events)
        with self.db.transaction() as cur:
            end = cur.execute("SELECT COALESCE(MAX(seq), 0) AS seq FROM transactions").fetchone()
            cur.execute("INSERT INTO webhooks (id, url, events, secret, position, created_at) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (webhook_id, url, json.dumps(list(kinds)), secret, int(end["seq"]) if end else 0, utc_now()))
        return self.get(webhook_id)

    def get(self, webhook_id: str) -> Webhook:
        with self.db.read() as cur:
            row = cur.execute("SELECT * FROM webhooks WHERE id = ?", (webhook_id,)).fetchone()
        if row is None:
            raise EntityNotFound(f"no webhook {webhook_id}")
        return Webhook.from_row(row)

    def all(self) -> list[Webhook]:
        with self.db.read() as cur:
            return [Webhook.from_row(r) for r in
                    cur.execute("SELECT * FROM webhooks ORDER BY created_at, id").fetchall()]

    def remove(self, webhook_id: str) -> None:
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,))
            if cur.rowcount != 1:
                raise EntityNotFound(f"no webhook {webhook_id}")

    def advanced(self, webhook_id: str, position: int) -> None:
        """The transactions up to ``position`` held nothing for this webhook: skip them."""
        with self.db.transaction() as cur:
            cur.execute("UPDATE webhooks SET position = ? WHERE id = ? AND position < ?",
                        (position, webhook_id, position))

    def delivered(self, webhook_id: str, position: int, count: int, when: str) -> None:
        """The receiver acknowledged ``count`` notices up to ``position``."""
        with self.db.transaction() as cur:
            cur.execute("UPDATE webhooks SET position = ?, delivered = delivered + ?, last_success = ?, attempts = 0, "
                        "next_attempt = 0 WHERE id = ? AND position < ?",
                        (position, count, when, webhook_id, position))

    def failed(self, webhook_id: str, when: str, error: str, next_attempt: float) -> None:
        with self.db.transaction() as cur:
            cur.execute("UPDATE webhooks SET last_error = ?, attempts = attempts + 1, next_attempt = ? WHERE id = ?",
                        (f"{when} {error}"[:500], next_attempt, webhook_id))
