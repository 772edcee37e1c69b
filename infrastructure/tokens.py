"""Editor tokens: JWTs the node issues to its editors and verifies on every request.

A token is signed with the node's active key (its ``kid`` in the header) and
verified with the key that ``kid`` names and that key's algorithm only, so
``alg: none`` or an HMAC made with a public key never verifies. Claims:
``iss`` = the node, ``aud`` = the node + ``#editor`` (a node-to-node token,
whose audience is the bare node name, is not an editor token), ``sub`` =
the editor's name, ``role`` (editor | admin | merge), ``team`` (optional),
``iat``, ``exp``, ``jti``. Every failure is ``Unauthorized``.

Only the node's active key verifies editor tokens: ``fedsync keys rotate``
(run after a suspected compromise) signs every editor out, while the retired
key still verifies the transactions it signed (``Keyring.token_keyset``).
The keyring is re-read when its file changes, so a rotation by another
process counts from the next request on.

Every token is recorded when it is issued, and the record decides whether
it may be used at all (``infrastructure/token_registry.py``: the ``TokenGate``
given to the verifier). A token's first use looks its record up in the store;
from then on the verified token is remembered until it expires, and each
request costs a dictionary lookup and the gate's in-memory revocation check,
never a signature check or a database round trip.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import jwt

from domain.errors import Unauthorized
from domain.visibility import ROLES, Editor
from infrastructure.signing import Keyring, KeySet

NAME = re.compile(r"[A-Za-z0-9._~-]{1,64}")
JTI = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DURATION = re.compile(r"(\d{1,6})([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# Admin tokens open every door (keys, peers, tokens): they live hours, not weeks, unless asked.
DEFAULT_LIFETIMES = {"admin": timedelta(hours=12), "editor": timedelta(days=30), "merge": timedelta(days=30)}
LEEWAY = 5  # seconds of clock skew tolerated on iat/exp
_CACHE_MAX = 10_000


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


def duration_text(value: timedelta) -> str:
    """timedelta -> '30d', '12h', '90m' or '45s' (the largest unit that divides it)."""
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def check_claims(name: str, role: str, team: str | None) -> None:
    if not NAME.fullmatch(name):
        raise ValueError(f"an editor name is 1-64 of A-Z a-z 0-9 . _ ~ -: {name!r}")
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    if team is not None and not NAME.fullmatch(team):
        raise ValueError(f"a team name is 1-64 of A-Z a-z 0-9 . _ ~ -: {team!r}")


def default_lifetime(role: str) -> timedelta:
    return DEFAULT_LIFETIMES.get(role, DEFAULT_LIFETIMES["admin"])


def mint(keyring: Keyring, node: str, name: str, *, role: str = "editor", team: str | None = None,
         lifetime: timedelta | None = None, now: float | None = None) -> tuple[str, dict[str, Any]]:
    """A signed editor token for ``name`` on ``node`` and its claims. It is refused until recorded:
    issue tokens with ``TokenRegistry.issue``, which mints and records."""
    check_claims(name, role, team)
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": node,
        "aud": audience(node),
        "sub": name,
        "role": role,
        "iat": issued,
        "exp": issued + int((lifetime or default_lifetime(role)).total_seconds()),
        "jti": uuid.uuid4().hex,
    }
    if team is not None:
        claims["team"] = team
    key = keyring.active
    return jwt.encode(claims, key.private_key, algorithm=key.alg, headers={"kid": key.kid}), claims


class Gate(Protocol):
    """What the records of issued tokens say about a verified token (``token_registry.TokenGate``)."""

    def admit(self, claims: dict[str, Any], kid: str) -> None:
        """First use of a token: raise ``Unauthorized`` unless its record allows it (may read the store)."""

    def refuses(self, jti: str, subject: str, issued_at: float) -> bool:
        """Revoked? Answered from memory, on every request."""


@dataclass(frozen=True, slots=True)
class _Verified:
    editor: Editor
    expires: float
    kid: str
    jti: str
    issued_at: float


class TokenVerifier:
    """Turns a bearer token into the ``Editor`` it names, or raises ``Unauthorized``."""

    def __init__(self, node: str, keyset: Callable[[], KeySet], gate: Gate,
                 clock: Callable[[], float] = time.time) -> None:
        self.node = node
        self._keyset = keyset  # the keys that verify editor tokens now (the active one)
        self.gate = gate
        self._clock = clock
        self._verified: dict[str, _Verified] = {}

    def remembered(self, token: str) -> Editor | None:
        """The editor of a token verified before and still good (memory only), else None: expired,
        revoked or of a retired key since, it is forgotten and ``verify`` says why it is refused."""
        known = self._verified.get(token)
        if known is None:
            return None
        if self._clock() >= known.expires + LEEWAY or known.kid not in self._keyset() \
                or self.gate.refuses(known.jti, known.editor.name, known.issued_at):
            self._verified.pop(token, None)
            return None
        return known.editor

    def verify(self, token: str) -> Editor:
        """The token's editor: from memory, else checked in full (signature, claims, record)."""
        editor = self.remembered(token)
        if editor is not None:
            return editor
        verified = self._verify(token)
        if len(self._verified) >= _CACHE_MAX:
            self._verified.clear()
        self._verified[token] = verified
        return verified.editor

    def _verify(self, token: str) -> _Verified:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("the bearer token is not a JWT") from None
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise Unauthorized("the bearer token names no signing key (kid)")
        keyset = self._keyset()
        if kid not in keyset:
            raise Unauthorized("the bearer token is signed by a key that does not sign tokens here "
                               "(unknown, or retired by a key rotation: ask for a new token)")
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
        name, role, team, jti = claims["sub"], claims.get("role", "editor"), claims.get("team"), claims["jti"]
        try:
            check_claims(name, role, team)
            if not isinstance(jti, str) or not JTI.fullmatch(jti) or not isinstance(claims["iat"], int | float):
                raise ValueError("jti or iat malformed")
        except (TypeError, ValueError) as e:
            raise Unauthorized(f"the bearer token's claims are not valid: {e}") from None
        if self.gate.refuses(jti, name, claims["iat"]):
            raise Unauthorized("the bearer token was revoked")
        self.gate.admit(claims, kid)
        editor = Editor(name=name, author=f"{name}@{self.node}", role=role, team=team)
        return _Verified(editor, float(claims["exp"]), kid, jti, float(claims["iat"]))
