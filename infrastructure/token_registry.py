"""The record of every editor token the node issued, and revocation.

A token is recorded when it is issued (``issue``): its ``jti``, subject,
role, team, label, signing key, issue and expiry times; never the token
itself, which is a bearer secret. An admin lists the records and revokes a
token by its ``jti``, or every token of one subject; each revocation bumps
a version counter in the store.

``TokenGate`` is what the serving process checks tokens against:

- on every request, from memory: the revoked ``jti``s and, per subject, the
  time before which its tokens are revoked (``revoke_all_for``). The set is
  loaded at start and reloaded when the version counter changes; the counter
  is read every ``FEDSYNC_TOKEN_REFRESH_INTERVAL`` seconds (2) by a
  background thread, so a revocation from the CLI (another process on the
  same store) counts within that interval; one made through the API counts
  at once, in its own process;
- on a token's first use, from the store: the token must have a record that
  matches its claims. A token with no record is refused, unless it was
  issued before the node first opened its record (the ``epoch``): those,
  from before records existed, are recorded at their first use (``legacy``)
  and from then on listed and revocable like any other. Refusing them would
  sign every editor out on the upgrade; accepting every unrecorded token
  would let a token minted outside ``issue`` escape listing and revocation.
  ``revoke_all_for`` and a key rotation reach even legacy tokens never used.

A token issued from another (a web session, started by pasting an editor
token: ``parent``) is revoked with it: revoking the pasted token ends the
sessions it opened, and theirs, in the same transaction.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.errors import TokenNotFound, Unauthorized
from infrastructure import tokens
from infrastructure.persistence import Database
from infrastructure.signing import Keyring

log = logging.getLogger("fedsync.tokens")
MAX_LABEL = 200
# Records of tokens expired longer ago than this are deleted (``TokenRegistry.prune``): an expired token is
# refused before its record is looked at, and each web sign-in adds a record, so without this they only grew.
RETENTION = timedelta(days=30)
PRUNE_EVERY = 3600.0  # seconds between two prunes by a serving process's gate
DDL = [
    "CREATE TABLE IF NOT EXISTS editor_tokens ("
    "jti TEXT PRIMARY KEY, subject TEXT NOT NULL, role TEXT NOT NULL, team TEXT, label TEXT, kid TEXT NOT NULL, "
    "issued_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, revoked_at BIGINT, revoked_by TEXT, "
    "legacy INTEGER NOT NULL DEFAULT 0, parent TEXT)",
    "CREATE INDEX IF NOT EXISTS editor_tokens_subject ON editor_tokens (subject, issued_at)",
    "CREATE TABLE IF NOT EXISTS token_subject_cutoffs (subject TEXT PRIMARY KEY, revoked_before BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS token_registry (id INTEGER PRIMARY KEY, epoch BIGINT NOT NULL, "
    "version BIGINT NOT NULL)",
]
_COLUMNS = "jti, subject, role, team, label, kid, issued_at, expires_at, revoked_at, revoked_by, legacy, parent"


def _rfc3339(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    except (OverflowError, ValueError, OSError):
        return "9999-12-31T23:59:59Z"


@dataclass(frozen=True, slots=True)
class TokenRecord:
    jti: str
    subject: str
    role: str
    team: str | None
    label: str | None
    kid: str
    issued_at: int
    expires_at: int
    revoked_at: int | None = None
    revoked_by: str | None = None
    legacy: bool = False
    parent: str | None = None  # the jti of the token this one was issued from (a web session's pasted token)

    def status(self, now: float, active_kid: str) -> str:
        """revoked | expired | key-retired (a rotation signed it out) | live."""
        if self.revoked_at is not None:
            return "revoked"
        if now >= self.expires_at:
            return "expired"
        return "live" if self.kid == active_kid else "key-retired"

    def as_dict(self, now: float, active_kid: str) -> dict[str, Any]:
        return {"jti": self.jti, "subject": self.subject, "role": self.role, "team": self.team,
                "label": self.label, "kid": self.kid, "issued_at": _rfc3339(self.issued_at),
                "expires_at": _rfc3339(self.expires_at), "revoked_at": _rfc3339(self.revoked_at),
                "revoked_by": self.revoked_by, "legacy": self.legacy, "status": self.status(now, active_kid)}


def _record(row: dict[str, Any]) -> TokenRecord:
    return TokenRecord(**{**row, "legacy": bool(row["legacy"])})


class TokenRegistry:
    """The node's records of the editor tokens it issued (node-local, not federated, not a projection)."""

    def __init__(self, db: Database, node: str, keyring: Callable[[], Keyring],
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.node = node
        self._keyring = keyring
        self._clock = clock

    def create_tables(self) -> None:
        with self.db.transaction() as cur:
            for statement in DDL:
                cur.execute(statement)
            if "parent" not in cur.columns("editor_tokens"):  # a store from before sessions followed their token
                cur.execute("ALTER TABLE editor_tokens ADD COLUMN parent TEXT")
            cur.execute("CREATE INDEX IF NOT EXISTS editor_tokens_parent ON editor_tokens (parent)")
            # The epoch: tokens issued before the node kept records may be recorded at first use.
            cur.execute("INSERT INTO token_registry (id, epoch, version) VALUES (1, ?, 0) ON CONFLICT (id) DO NOTHING",
                        (int(self._clock()),))

    def issue(self, name: str, *, role: str = "editor", team: str | None = None, lifetime: timedelta | None = None,
              label: str | None = None, now: float | None = None, parent: str | None = None) -> str:
        """A new token for editor ``name``, recorded before it is handed out; ``parent``: the jti of the token
        it is issued from, whose revocation revokes it too."""
        if label is not None and (len(label) > MAX_LABEL or not label.isprintable()):
            raise ValueError(f"a label is at most {MAX_LABEL} printable characters")
        keyring = self._keyring()  # once: the kid recorded is the one that signed
        token, claims = tokens.mint(keyring, self.node, name, role=role, team=team, lifetime=lifetime,
                                    now=self._clock() if now is None else now)
        self._insert(claims, keyring.active.kid, label=label or None, legacy=False, parent=parent)
        return token

    def find(self, jti: str) -> TokenRecord | None:
        with self.db.read() as cur:
            row = cur.execute(f"SELECT {_COLUMNS} FROM editor_tokens WHERE jti = ?", (jti,)).fetchone()
        return None if row is None else _record(row)

    def records(self, *, subject: str | None = None, every: bool = False) -> list[dict[str, Any]]:
        """The records (as shown to an admin), oldest first: the live ones, or ``every`` one."""
        sql, params = f"SELECT {_COLUMNS} FROM editor_tokens", []
        if subject is not None:
            sql, params = sql + " WHERE subject = ?", [subject]
        with self.db.read() as cur:
            rows = cur.execute(sql + " ORDER BY issued_at, jti", params).fetchall()
        now, active = self._clock(), self._keyring().active.kid
        shown = [_record(row).as_dict(now, active) for row in rows]
        return shown if every else [r for r in shown if r["status"] == "live"]

    def revoke(self, jti: str, *, by: str) -> dict[str, Any]:
        """Revoke one token (again: nothing changes), and the tokens issued from it (its web sessions, theirs);
        its record as shown after it."""
        now = int(self._clock())
        with self.db.transaction() as cur:
            changed = cur.execute("UPDATE editor_tokens SET revoked_at = ?, revoked_by = ? "
                                  "WHERE jti = ? AND revoked_at IS NULL", (now, by, jti)).rowcount
            issued_from = [jti]
            while issued_from:  # each token is revoked once (revoked_at IS NULL): this ends
                marks = ", ".join("?" * len(issued_from))
                issued_from = [row["jti"] for row in cur.execute(
                    f"SELECT jti FROM editor_tokens WHERE parent IN ({marks}) AND revoked_at IS NULL",
                    issued_from).fetchall()]
                if issued_from:
                    marks = ", ".join("?" * len(issued_from))
                    changed += cur.execute(f"UPDATE editor_tokens SET revoked_at = ?, revoked_by = ? "
                                           f"WHERE jti IN ({marks})", (now, by, *issued_from)).rowcount
            if changed:
                cur.execute("UPDATE token_registry SET version = version + 1 WHERE id = 1")
        record = self.find(jti)
        if record is None:
            raise TokenNotFound(f"no token with jti {jti} was issued here")
        return record.as_dict(self._clock(), self._keyring().active.kid)

    def revoke_all_for(self, subject: str, *, by: str) -> list[dict[str, Any]]:
        """Revoke every token of ``subject`` issued until now, recorded or not; the records revoked."""
        tokens.check_claims(subject, "editor", None)
        now = int(self._clock())
        with self.db.transaction() as cur:
            live = [row["jti"] for row in cur.execute(
                "SELECT jti FROM editor_tokens WHERE subject = ? AND revoked_at IS NULL", (subject,)).fetchall()]
            cur.execute("UPDATE editor_tokens SET revoked_at = ?, revoked_by = ? WHERE subject = ? "
                        "AND revoked_at IS NULL", (now, by, subject))
            # Also every token of the subject issued before now that has no record (legacy, never used).
            cur.execute("INSERT INTO token_subject_cutoffs (subject, revoked_before) VALUES (?, ?) ON CONFLICT "
                        "(subject) DO UPDATE SET revoked_before = excluded.revoked_before", (subject, now))
            cur.execute("UPDATE token_registry SET version = version + 1 WHERE id = 1")
        revoked = set(live)
        return [r for r in self.records(subject=subject, every=True) if r["jti"] in revoked]

    def prune(self) -> int:
        """Delete the records of tokens that expired more than ``RETENTION`` ago; how many. Such a token is
        refused as expired (``TokenVerifier``) before its record, or its absence, is looked at."""
        return self.db.write("DELETE FROM editor_tokens WHERE expires_at < ?",
                             (int(self._clock() - RETENTION.total_seconds()),))

    def epoch(self) -> int:
        with self.db.read() as cur:
            return int(cur.execute("SELECT epoch FROM token_registry WHERE id = 1").fetchone()["epoch"])

    def version(self) -> int:
        with self.db.read() as cur:
            return int(cur.execute("SELECT version FROM token_registry WHERE id = 1").fetchone()["version"])

    def revocations(self) -> tuple[int, frozenset[str], dict[str, int]]:
        """(version, the revoked jtis of tokens not yet expired, subject -> revoked before), read together."""
        with self.db.read() as cur:
            version = cur.execute("SELECT version FROM token_registry WHERE id = 1").fetchone()["version"]
            jtis = frozenset(row["jti"] for row in cur.execute(
                "SELECT jti FROM editor_tokens WHERE revoked_at IS NOT NULL AND expires_at > ?",
                (int(self._clock()) - tokens.LEEWAY,)).fetchall())
            cutoffs = {row["subject"]: int(row["revoked_before"])
                       for row in cur.execute("SELECT subject, revoked_before FROM token_subject_cutoffs").fetchall()}
        return int(version), jtis, cutoffs

    def adopt(self, claims: dict[str, Any], kid: str) -> None:
        """Record a token from before records existed, at its first use."""
        self._insert(claims, kid, label=None, legacy=True)

    def _insert(self, claims: dict[str, Any], kid: str, *, label: str | None, legacy: bool,
                parent: str | None = None) -> None:
        with self.db.transaction() as cur:
            cur.execute(f"INSERT INTO editor_tokens ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?) "
                        "ON CONFLICT (jti) DO NOTHING",
                        (claims["jti"], claims["sub"], claims.get("role", "editor"), claims.get("team"), label,
                         kid, int(claims["iat"]), int(claims["exp"]), int(legacy), parent))


class TokenGate:
    """The serving process's view of the records: revocations in memory, records at first use."""

    def __init__(self, registry: TokenRegistry, refresh_interval: float = 2.0) -> None:
        self.registry = registry
        self.refresh_interval = refresh_interval
        self._epoch = registry.epoch()
        self._version, self._revoked, self._cutoffs = registry.revocations()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def refuses(self, jti: str, subject: str, issued_at: float) -> bool:
        return jti in self._revoked or issued_at < self._cutoffs.get(subject, float("-inf"))

    def admit(self, claims: dict[str, Any], kid: str) -> None:
        record = self.registry.find(claims["jti"])
        if record is None:
            if claims["iat"] >= self._epoch:
                raise Unauthorized("the bearer token has no record on this node: it was not issued here "
                                   "(tokens come from 'fedsync token create')")
            self.registry.adopt(claims, kid)
            log.info("token %s of %s, issued before token records, recorded at its first use",
                     claims["jti"], claims["sub"])
            return
        claimed = (claims["sub"], claims.get("role", "editor"), claims.get("team"), kid, int(claims["iat"]),
                   int(claims["exp"]))
        if (record.subject, record.role, record.team, record.kid, record.issued_at, record.expires_at) != claimed:
            raise Unauthorized("the bearer token does not match the record of its jti")
        if record.revoked_at is not None:
            self.refresh()
            raise Unauthorized("the bearer token was revoked")

    def refresh(self) -> None:
        """Reload the revocations if the store's version changed (one small read when it did not)."""
        with self._lock:
            if self.registry.version() == self._version:
                return
            self._version, revoked, cutoffs = self.registry.revocations()
            self._revoked, self._cutoffs = revoked, cutoffs  # each replaced whole: readers never lock

    def start(self) -> None:
        """Refresh every ``refresh_interval`` seconds in a background thread, until ``stop``."""
        self._thread = threading.Thread(target=self._loop, name="fedsync-token-revocations", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        pruned_at = float("-inf")
        while not self._stopping.wait(self.refresh_interval):
            try:
                self.refresh()
                if time.monotonic() - pruned_at >= PRUNE_EVERY:
                    pruned_at = time.monotonic()
                    if pruned := self.registry.prune():
                        log.info("deleted the records of %d tokens expired more than %d days ago", pruned,
                                 RETENTION.days)
            except Exception:  # keep refreshing (a store that is down for a moment), but say so
                log.exception("reading token revocations failed")
