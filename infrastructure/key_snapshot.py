"""What a node verifies an origin's transactions with, as plain data: usable outside ``KeyDirectory`` and its
store, so that a check worker (``infrastructure/check_pool.py``), which verifies with a ``KeySnapshot``, imports
no database driver (a spawned worker's start is its imports: each of them is pages of a catch-up checked in the
main process meanwhile)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from domain.errors import RevokedKey, UnknownKey
from domain.transaction import normal_timestamp
from infrastructure.signing import KeySet, kid_of


@dataclass(frozen=True)
class KnownKeys:
    """What this node knows of one origin's keys."""

    usable: KeySet
    direct: KeySet
    revoked: dict[str, str]  # kid -> the created_at from which it verifies nothing

    def verify(self, tx: dict[str, Any], signed: bytes, kid: str | None) -> None:
        if not len(self.usable):
            raise UnknownKey(f"no keys known for origin {tx['origin']}")
        since = self.revoked.get(kid) if kid is not None else None
        if since is not None and normal_timestamp(tx["created_at"]) >= since:
            raise RevokedKey(f"{tx['origin']} revoked key {kid} for everything created since {since}; "
                             f"transaction {tx['gid']} of {tx['created_at']} refused")
        self.usable.verify(tx["signature"], signed)


@dataclass(frozen=True)
class KeySnapshot:
    """The keys ``KeyDirectory.verify`` would use now for some origins, as plain data for another process
    (``infrastructure/check_pool.py``). Its ``verify`` never reloads: a kid it does not hold raises
    ``UnknownKey``, and the caller asks the directory itself (which reloads, and says why it refuses)."""

    node: str
    own: list[dict[str, Any]]
    origins: dict[str, tuple[list[dict[str, Any]], dict[str, str]]]  # origin -> (usable JWKs, revoked)

    @functools.cached_property
    def _loaded(self) -> dict[str, KnownKeys]:
        """Each origin's keys loaded once per snapshot (in the worker that verifies with it)."""
        return {origin: KnownKeys(_keyset(usable), KeySet(), revoked)
                for origin, (usable, revoked) in self.origins.items()}

    def verify(self, tx: dict[str, Any], signed: bytes) -> None:
        kid = kid_of(tx["signature"])
        if tx["origin"] == self.node:
            _keyset(self.own).verify(tx["signature"], signed)
            return
        known = self._loaded.get(tx["origin"])
        if known is None or kid not in known.usable:
            raise UnknownKey(f"key {kid} of {tx['origin']} is not in this snapshot")
        known.verify(tx, signed, kid)


_keysets: dict[str, KeySet] = {}  # a worker process's loaded keys, by their JWKs' text


def _keyset(jwks: list[dict[str, Any]]) -> KeySet:
    text = "\n".join(jwk_text(jwk) for jwk in jwks)
    keyset = _keysets.get(text)
    if keyset is None:
        if len(_keysets) >= 256:
            _keysets.clear()
        keyset = _keysets[text] = KeySet(jwks)
    return keyset


def jwk_text(jwk: dict[str, Any]) -> str:
    """A JWK as stored and compared: JSON with sorted keys."""
    return json.dumps(jwk, sort_keys=True)
