"""Which public keys sign for which node: the verifier port of the application.

A transaction is verified against the keys of its *origin*, never of
whoever delivered it. Where those keys come from decides whether a hostile
peer can plant a key and become another node (docs/decisions/authority.md,
"Keys"):

- A node's own keys come from its keyring.
- **Direct keys** (``node_keys``) are fetched from the node itself: from a
  peer's own JWKS (at ``peer add``, on an unknown ``kid``, on the scheduled
  refresh) or accepted by the admin. They are the only keys of a direct
  peer, and the only keys node tokens are checked with.
- **Vouched keys** (``vouched_keys``) are what a relay (a peer the admin
  added with ``--relay``) says another origin's keys are. They apply only
  to origins that are not direct peers, and only while every relay that
  vouched for the origin says the same set of keys, which holds every
  direct key of the origin (keys are never dropped from a JWKS): two
  relays that disagree, or a relay that disagrees with what the admin
  trusted, make a dispute, and none of the vouched keys is used until the
  admin trusts one relay's answer (``trust``) or the relays agree again.
- A revoked key (``revoked_keys``, from the ``revoked`` member of the
  origin's JWKS, ``[{"kid", "since"}]``) verifies nothing created at or
  after ``since`` (the revocation, or the compromise time the admin gave):
  ``domain.errors.RevokedKey``; what it signed before still verifies. A
  revocation only ever makes a node refuse more, so it is taken from relays
  too, and never undone (the earliest time wins).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from domain.errors import TransactionNotFound
from domain.transaction import normal_timestamp
from infrastructure.key_snapshot import KeySnapshot, KnownKeys, jwk_text
from infrastructure.persistence import Cursor, Database
from infrastructure.signing import Keyring, KeySet, kid_of

DDL = [
    "CREATE TABLE IF NOT EXISTS node_keys ("
    "origin TEXT NOT NULL, kid TEXT NOT NULL, jwk TEXT NOT NULL, PRIMARY KEY (origin, kid))",
    "CREATE TABLE IF NOT EXISTS vouched_keys ("
    "origin TEXT NOT NULL, relay TEXT NOT NULL, kid TEXT NOT NULL, jwk TEXT NOT NULL, "
    "PRIMARY KEY (origin, relay, kid))",
    "CREATE TABLE IF NOT EXISTS revoked_keys ("
    "origin TEXT NOT NULL, kid TEXT NOT NULL, since TEXT NOT NULL, PRIMARY KEY (origin, kid))",
]


@dataclass(frozen=True)
class Dispute:
    """Relays that vouch different key sets for one origin: none of them is used."""

    origin: str
    vouched: dict[str, list[str]]  # relay -> the kids it vouches, sorted
    trusted: list[str]  # the origin's direct keys (from itself, or trusted by the admin)

    def as_dict(self) -> dict[str, Any]:
        return {"origin": self.origin, "vouched": self.vouched, "trusted": self.trusted}


class KeyDirectory:
    def __init__(self, db: Database, node: str, own_keys: Callable[[], Keyring],
                 is_peer: Callable[[str], bool] = lambda name: False) -> None:
        self.db = db
        self.node = node
        self.own_keys = own_keys  # the node's current keyring (it may be rotated meanwhile)
        self.is_peer = is_peer
        self._cache: dict[str, KnownKeys] = {}
        self._lock = threading.Lock()

    def create_tables(self) -> None:
        with self.db.transaction() as cur:
            for statement in DDL:
                cur.execute(statement)

    # --- reading ---------------------------------------------------------
    def keyset(self, origin: str, *, reload: bool = False) -> KeySet:
        """The keys this node verifies ``origin``'s transactions with."""
        if origin == self.node:
            return self.own_keys().keyset()
        return self._known(origin, reload).usable

    def direct_keyset(self, origin: str, *, reload: bool = False) -> KeySet:
        """The keys fetched from ``origin`` itself: the only ones node tokens are checked with."""
        if origin == self.node:
            return self.own_keys().keyset()
        return self._known(origin, reload).direct

    def _known(self, origin: str, reload: bool) -> KnownKeys:
        cached = None if reload else self._cache.get(origin)
        if cached is not None:
            return cached
        # Another process (the CLI) may pin keys: only non-empty sets are cached, and an
        # unknown kid reloads (see verify).
        with self.db.read() as cur:
            direct = [json.loads(r["jwk"]) for r in
                      cur.execute("SELECT jwk FROM node_keys WHERE origin = ?", (origin,)).fetchall()]
            vouches = _vouches(cur, origin)
            revoked = {r["kid"]: r["since"] for r in cur.execute(
                "SELECT kid, since FROM revoked_keys WHERE origin = ?", (origin,)).fetchall()}
        vouched = [] if self.is_peer(origin) else _agreed(vouches, {jwk["kid"] for jwk in direct}) or []
        seen = {jwk["kid"] for jwk in direct}
        known = KnownKeys(KeySet([*direct, *(jwk for jwk in vouched if jwk["kid"] not in seen)]), KeySet(direct),
                          revoked)
        if len(known.usable):
            with self._lock:
                self._cache[origin] = known
        return known

    def jwks(self, origin: str) -> dict[str, Any]:
        """The JWKS this node verifies ``origin`` with (peers that get its relays ask for it)."""
        if origin == self.node:
            return self.own_keys().jwks()
        known = self._known(origin, False)
        if not len(known.usable):
            raise TransactionNotFound(f"no keys known for {origin}")
        document = known.usable.jwks()
        if known.revoked:
            document["revoked"] = [{"kid": kid, "since": since} for kid, since in sorted(known.revoked.items())]
        return document

    def disputes(self) -> list[Dispute]:
        """Origins whose relays vouch different keys (their vouched keys are not used)."""
        found = []
        with self.db.read() as cur:
            for origin in self.vouched_origins():
                vouches, direct = _vouches(cur, origin), _direct_kids(cur, origin)
                if _agreed(vouches, direct) is None:
                    found.append(Dispute(origin, {relay: sorted(j["kid"] for j in jwks)
                                                  for relay, jwks in sorted(vouches.items())}, sorted(direct)))
        return found

    # --- learning --------------------------------------------------------
    def pin(self, origin: str, jwks: dict[str, Any]) -> KeySet:
        """Pin (add) the keys of a JWKS document fetched from ``origin`` itself; existing kids are
        kept. Its ``revoked`` member (our extension) revokes keys."""
        keyset = KeySet.from_jwks(jwks)
        with self.db.transaction() as cur:
            cur.executemany(
                "INSERT INTO node_keys (origin, kid, jwk) VALUES (?, ?, ?) ON CONFLICT (origin, kid) DO NOTHING",
                [(origin, jwk["kid"], jwk_text(jwk)) for jwk in keyset.jwks()["keys"]],
            )
            _record_revocations(cur, origin, jwks.get("revoked"))
        self._forget(origin)
        return keyset

    def vouch(self, origin: str, relay: str, jwks: dict[str, Any]) -> bool:
        """Record what ``relay`` says ``origin``'s keys are (its whole answer replaces its last one);
        True when the relays that vouch for ``origin`` now disagree. A relay's word on revocations
        counts only for origins that are not direct peers: those say it themselves."""
        keyset = KeySet.from_jwks(jwks)
        revoked = None if self.is_peer(origin) else jwks.get("revoked")
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM vouched_keys WHERE origin = ? AND relay = ?", (origin, relay))
            cur.executemany(
                "INSERT INTO vouched_keys (origin, relay, kid, jwk) VALUES (?, ?, ?, ?)",
                [(origin, relay, jwk["kid"], jwk_text(jwk)) for jwk in keyset.jwks()["keys"]],
            )
            _record_revocations(cur, origin, revoked)
            disputed = _agreed(_vouches(cur, origin), _direct_kids(cur, origin)) is None
        self._forget(origin)
        return disputed

    def revocations(self) -> list[dict[str, str]]:
        """Every key of another node that its node revoked: origin, kid, since."""
        with self.db.read() as cur:
            return cur.execute("SELECT origin, kid, since FROM revoked_keys ORDER BY origin, kid").fetchall()

    def knows(self, origin: str) -> bool:
        """Has this node any keys of ``origin`` (from itself, its admin or a relay)?"""
        if origin == self.node:
            return True
        with self.db.read() as cur:
            return any(cur.execute(f"SELECT 1 AS known FROM {table} WHERE origin = ? LIMIT 1", (origin,)).fetchone()
                       for table in ("node_keys", "vouched_keys"))

    def vouched_origins(self) -> list[str]:
        with self.db.read() as cur:
            return [r["origin"] for r in
                    cur.execute("SELECT DISTINCT origin FROM vouched_keys ORDER BY origin").fetchall()]

    def vouchers(self, origin: str) -> list[str]:
        """The relays that vouched for ``origin``."""
        with self.db.read() as cur:
            return sorted(_vouches(cur, origin))

    def trust(self, origin: str, relay: str) -> list[str]:
        """The admin's decision in a dispute: ``relay``'s keys for ``origin`` become direct keys and
        every relay's vouches for it are dropped. Returns the kids trusted."""
        with self.db.transaction() as cur:
            chosen = _vouches(cur, origin).get(relay)
            if not chosen:
                raise ValueError(f"{relay} vouches no keys for {origin}")
            cur.executemany(
                "INSERT INTO node_keys (origin, kid, jwk) VALUES (?, ?, ?) ON CONFLICT (origin, kid) DO NOTHING",
                [(origin, jwk["kid"], jwk_text(jwk)) for jwk in chosen],
            )
            cur.execute("DELETE FROM vouched_keys WHERE origin = ?", (origin,))
        self._forget(origin)
        return sorted(jwk["kid"] for jwk in chosen)

    def _forget(self, origin: str) -> None:
        with self._lock:
            self._cache.pop(origin, None)

    # --- verifying -------------------------------------------------------
    def verify(self, tx: dict[str, Any], signed: bytes) -> None:
        kid = kid_of(tx["signature"])
        known = self._known(tx["origin"], False) if tx["origin"] != self.node else None
        if known is None:
            self.own_keys().keyset().verify(tx["signature"], signed)
            return
        if kid not in known.usable:
            known = self._known(tx["origin"], True)
        known.verify(tx, signed, kid)

    def snapshot(self, origins: Iterable[str]) -> KeySnapshot:
        """What ``verify`` would verify these origins' transactions with now (no reload)."""
        known = {origin: self._known(origin, False) for origin in set(origins) - {self.node}}
        return KeySnapshot(self.node, self.own_keys().keyset().jwks()["keys"], {
            origin: (keys.usable.jwks()["keys"], dict(keys.revoked)) for origin, keys in known.items()})


def _vouches(cur: Cursor, origin: str) -> dict[str, list[dict[str, Any]]]:
    by_relay: dict[str, list[dict[str, Any]]] = {}
    for r in cur.execute("SELECT relay, jwk FROM vouched_keys WHERE origin = ? ORDER BY relay, kid",
                         (origin,)).fetchall():
        by_relay.setdefault(r["relay"], []).append(json.loads(r["jwk"]))
    return by_relay


def _direct_kids(cur: Cursor, origin: str) -> set[str]:
    return {r["kid"] for r in cur.execute("SELECT kid FROM node_keys WHERE origin = ?", (origin,)).fetchall()}


def _agreed(vouches: dict[str, list[dict[str, Any]]], direct: set[str]) -> list[dict[str, Any]] | None:
    """The vouched keys when every relay vouches the same kids and they hold the direct ones ([] when
    none vouched); None when they disagree."""
    sets = {frozenset(jwk["kid"] for jwk in jwks) for jwks in vouches.values()}
    if len(sets) > 1 or any(not direct <= kids for kids in sets):
        return None
    return next(iter(vouches.values()), [])


def _record_revocations(cur: Cursor, origin: str, revoked: Iterable[Any] | None) -> None:
    """Keep the revocations a JWKS lists (a revocation is never undone; the earliest time wins)."""
    for entry in revoked if isinstance(revoked, list) else []:
        try:
            kid, since = entry["kid"], normal_timestamp(entry["since"])
            if not isinstance(kid, str):
                raise TypeError
        except (TypeError, KeyError, ValueError):
            continue  # ignored, like any JWKS member we do not understand
        cur.execute(
            "INSERT INTO revoked_keys (origin, kid, since) VALUES (?, ?, ?) "
            "ON CONFLICT (origin, kid) DO UPDATE SET since = CASE "
            "WHEN excluded.since < revoked_keys.since THEN excluded.since ELSE revoked_keys.since END",
            (origin, kid, since),
        )
