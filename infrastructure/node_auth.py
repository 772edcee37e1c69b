"""Node-to-node request authentication: short-lived JWTs signed by the caller.

Every federation request carries ``Authorization: Bearer <jwt>`` with
``iss`` = calling node, ``aud`` = called node, ``iat``/``exp`` at most 60 s
apart, and a fresh ``jti``. The callee accepts it only if the issuer is a
peer, the signature verifies with one of that peer's pinned keys (the
algorithm is the key's, never the header's choice), the audience is itself,
the token is unexpired and its ``jti`` was not seen before.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt

from domain.errors import DomainError, Unauthorized, UnknownTokenKey
from infrastructure.signing import Keyring, KeySet

MAX_LIFETIME = 60
LEEWAY = 5


def issue(keyring: Keyring, issuer: str, audience: str, *, lifetime: int = 30,
          now: float | None = None) -> str:
    key = keyring.active
    issued = int(time.time() if now is None else now)
    claims = {"iss": issuer, "aud": audience, "iat": issued, "exp": issued + lifetime,
              "jti": uuid.uuid4().hex}
    return jwt.encode(claims, key.private_key, algorithm=key.alg, headers={"kid": key.kid})


class NodeAuthenticator:
    """Verifies node tokens; ``find_peer(name)`` gives a peer's record (None: not a peer), ``keys_of(peer,
    refresh)`` its KeySet."""

    def __init__(self, own_name: str, find_peer: Callable[[str], Any],
                 keys_of: Callable[[str, bool], KeySet], remember_jti: Callable[[str, float], bool]) -> None:
        self.own_name = own_name
        self.find_peer = find_peer
        self.keys_of = keys_of
        self.remember_jti = remember_jti

    def authenticate(self, authorization: str | None) -> str | None:
        """The calling node's name; None without a token (an anonymous caller)."""
        found = self.authenticate_peer(authorization)
        return None if found is None else found[0]

    def authenticate_peer(self, authorization: str | None) -> tuple[str, Any] | None:
        """The calling node's name and its peer record as read to check it (None: an anonymous caller): a
        caller that needs the record takes this one instead of reading it again."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("Authorization must be 'Bearer <node token>'")
        try:
            header = jwt.get_unverified_header(token)
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError as e:
            raise Unauthorized(f"malformed node token: {e}") from None
        peer = self.find_peer(issuer) if isinstance(issuer, str) else None
        if peer is None:
            raise Unauthorized(f"unknown caller {issuer!r}: not a peer of this node")
        claims = self._verify(token, issuer, header.get("kid"))
        if claims["exp"] - claims["iat"] > MAX_LIFETIME or claims["iat"] > time.time() + LEEWAY:
            raise Unauthorized(f"node token lifetime must be at most {MAX_LIFETIME} s")
        if not self.remember_jti(f"{issuer} {claims['jti']}", float(claims["exp"])):
            raise Unauthorized("replayed node token (jti already used)")
        return issuer, peer

    def _verify(self, token: str, issuer: str, kid: Any) -> dict[str, Any]:
        if not isinstance(kid, str):
            raise Unauthorized("node token has no kid")
        keys = self.keys_of(issuer, False)
        if kid not in keys:
            keys = self.keys_of(issuer, True)  # the peer may have rotated its key
        if kid not in keys:
            raise UnknownTokenKey(f"node token signed with unknown key {kid} of {issuer}: this node is "
                                  f"reading {issuer}'s keys now; try again in a moment")
        try:
            return jwt.decode(
                token, keys.public_key(kid), algorithms=[keys.alg_of(kid)], audience=self.own_name,
                issuer=issuer, leeway=LEEWAY, options={"require": ["iss", "aud", "iat", "exp", "jti"]},
            )
        except jwt.PyJWTError as e:
            raise Unauthorized(f"node token refused: {e}") from None
        except DomainError as e:
            raise Unauthorized(e.detail) from None
