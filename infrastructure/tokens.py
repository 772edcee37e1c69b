"""Editor tokens: JWTs the node issues to its editors and verifies on every request.

A token is signed with the node's active key (its ``kid`` in the header) and
verified with the key that ``kid`` names and that key's algorithm only, so
``alg: none`` or an HMAC made with a public key never verifies. Claims:
``iss`` = the node, ``aud`` = the node + ``#editor`` (a node-to-node token,
whose audience is the bare node name, is not an editor token), ``sub`` =
the editor's name, ``role`` (editor | admin | merge), ``team`` (optional),
``iat``, ``exp``, ``jti``. Every failure is ``Unauthorized``.

Tokens of a key rotated in by another process (``fedsync keys rotate``)
verify after a reload of the keyring, which an unknown ``kid`` triggers at
most once a second. Verified tokens are remembered until they expire, so a
busy editor's requests do not pay for a signature check each.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import jwt

from domain.errors import Unauthorized
from domain.visibility import ROLES, Editor
from infrastructure.signing import Keyring, KeySet

NAME = re.compile(r"[A-Za-z0-9._~-]{1,64}")
_DURATION = re.compile(r"(\d{1,6})([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
DEFAULT_LIFETIME = timedelta(days=30)
LEEWAY = 5  # seconds of clock skew tolerated on iat/exp
_CACHE_MAX = 10_000
_RELOAD_EVERY = 1.0


def audience(node: str) -> str:
    return f"{node}#editor"


def parse_duration(text: str) -> timedelta:
    """'90s', '15m', '12h', '30d', '2w' -> timedelta; ValueError otherwise."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not a duration like 12h, 30d or 2w: {text!r}")
    value = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if value <= timedelta(0):
        raise ValueError("a token lifetime must be positive")
    return value


def check_claims(name: str, role: str, team: str | None) -> None:
    if not NAME.fullmatch(name):
        raise ValueError(f"an editor name is 1-64 of A-Z a-z 0-9 . _ ~ -: {name!r}")
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    if team is not None and not NAME.fullmatch(team):
        raise ValueError(f"a team name is 1-64 of A-Z a-z 0-9 . _ ~ -: {team!r}")


def issue(keyring: Keyring, node: str, name: str, *, role: str = "editor", team: str | None = None,
          lifetime: timedelta = DEFAULT_LIFETIME, now: float | None = None) -> str:
    """A signed editor token for ``name`` on ``node``."""
    check_claims(name, role, team)
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": node,
        "aud": audience(node),
        "sub": name,
        "role": role,
        "iat": issued,
        "exp": issued + int(lifetime.total_seconds()),
        "jti": uuid.uuid4().hex,
    }
    if team is not None:
        claims["team"] = team
    key = keyring.active
    return jwt.encode(claims, key.private_key, algorithm=key.alg, headers={"kid": key.kid})


class TokenVerifier:
    """Turns a bearer token into the ``Editor`` it names, or raises ``Unauthorized``."""

    def __init__(self, node: str, keyset: Callable[[], KeySet],
                 reload: Callable[[], KeySet] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.node = node
        self._keyset = keyset
        self._reload = reload
        self._clock = clock
        self._extra: KeySet | None = None  # keys found by a reload
        self._last_reload = 0.0
        self._verified: dict[str, tuple[Editor, float, str]] = {}
        self._lock = threading.Lock()

    def verify(self, token: str) -> Editor:
        now = self._clock()
        known = self._verified.get(token)
        if known is not None and now < known[1] + LEEWAY and known[2] in self._keyset():  # not revoked since
            return known[0]
        editor, expires, kid = self._verify(token)
        if len(self._verified) >= _CACHE_MAX:
            self._verified.clear()
        self._verified[token] = (editor, expires, kid)
        return editor

    def _verify(self, token: str) -> tuple[Editor, float, str]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("the bearer token is not a JWT") from None
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise Unauthorized("the bearer token names no signing key (kid)")
        keyset = self._keys_with(kid)
        algorithms = {jwk["kid"]: jwk["alg"] for jwk in keyset.jwks()["keys"]}
        try:
            claims = jwt.decode(
                token,
                keyset.public_key(kid),
                algorithms=[algorithms[kid]],  # the key's algorithm, never the header's choice
                audience=audience(self.node),
                issuer=self.node,
                leeway=LEEWAY,
                # expiry is checked below, against this verifier's clock
                options={"require": ["iss", "aud", "sub", "iat", "exp", "jti"], "verify_exp": False},
            )
        except jwt.PyJWTError as e:
            raise Unauthorized(f"the bearer token is not valid here: {e}") from None
        if not isinstance(claims["exp"], int | float) or self._clock() >= claims["exp"] + LEEWAY:
            raise Unauthorized("the bearer token has expired")
        name, role, team = claims["sub"], claims.get("role", "editor"), claims.get("team")
        try:
            check_claims(name, role, team)
        except (TypeError, ValueError) as e:
            raise Unauthorized(f"the bearer token's claims are not valid: {e}") from None
        return Editor(name=name, author=f"{name}@{self.node}", role=role, team=team), float(claims["exp"]), kid

    def _keys_with(self, kid: str) -> KeySet:
        keyset = self._keyset()
        if kid in keyset:
            return keyset
        with self._lock:
            if self._extra is not None and kid in self._extra:
                return self._extra
            now = self._clock()
            if self._reload is not None and now - self._last_reload >= _RELOAD_EVERY:
                self._last_reload = now
                self._extra = self._reload()
                if kid in self._extra:
                    return self._extra
        raise Unauthorized("the bearer token is signed by a key this node does not have")
