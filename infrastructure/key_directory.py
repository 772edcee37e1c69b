"""Which public keys sign for which node: the verifier port of the application.

A node's own keys come from its keyring; other nodes' keys are pinned in
the ``node_keys`` table (from their JWKS, on peering or when a transaction
carries an unknown ``kid``). A transaction is verified against the keys of
its *origin*, never of whoever delivered it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from domain.errors import TransactionNotFound, UnknownKey
from infrastructure.persistence import Database
from infrastructure.signing import Keyring, KeySet, kid_of

DDL = [
    "CREATE TABLE IF NOT EXISTS node_keys ("
    "origin TEXT NOT NULL, kid TEXT NOT NULL, jwk TEXT NOT NULL, PRIMARY KEY (origin, kid))",
]


class KeyDirectory:
    def __init__(self, db: Database, node: str, own_keys: Callable[[], Keyring]) -> None:
        self.db = db
        self.node = node
        self.own_keys = own_keys  # the node's current keyring (it may be rotated meanwhile)
        self._cache: dict[str, KeySet] = {}

    def create_tables(self) -> None:
        with self.db.transaction() as cur:
            for statement in DDL:
                cur.execute(statement)

    def keyset(self, origin: str, *, reload: bool = False) -> KeySet:
        if origin == self.node:
            return self.own_keys().keyset()
        cached = None if reload else self._cache.get(origin)
        if cached is None:
            # Another process (the CLI) may pin keys: only non-empty sets are cached,
            # and an unknown kid reloads (see verify).
            with self.db.read() as cur:
                rows = cur.execute("SELECT jwk FROM node_keys WHERE origin = ?", (origin,)).fetchall()
            cached = KeySet(json.loads(row["jwk"]) for row in rows)
            if len(cached):
                self._cache[origin] = cached
        return cached

    def jwks(self, origin: str) -> dict[str, Any]:
        """The JWKS this node verifies ``origin`` with (peers that get its relays ask for it)."""
        if origin == self.node:
            return self.own_keys().jwks()
        keyset = self.keyset(origin)
        if not len(keyset):
            raise TransactionNotFound(f"no keys known for {origin}")
        return keyset.jwks()

    def pin(self, origin: str, jwks: dict[str, Any]) -> KeySet:
        """Pin (add) the keys of a node's JWKS document; existing kids are kept."""
        keyset = KeySet.from_jwks(jwks)
        with self.db.transaction() as cur:
            cur.executemany(
                "INSERT INTO node_keys (origin, kid, jwk) VALUES (?, ?, ?) ON CONFLICT (origin, kid) DO NOTHING",
                [(origin, jwk["kid"], json.dumps(jwk, sort_keys=True)) for jwk in jwks.get("keys", [])],
            )
        self._cache.pop(origin, None)
        return keyset

    def verify(self, tx: dict[str, Any], signed: bytes) -> None:
        keyset = self.keyset(tx["origin"])
        if kid_of(tx["signature"]) not in keyset:
            keyset = self.keyset(tx["origin"], reload=True)
        if not len(keyset):
            raise UnknownKey(f"no keys known for origin {tx['origin']}")
        keyset.verify(tx["signature"], signed)
