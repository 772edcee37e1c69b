"""The one text form of a detached compact JWS (RFC 7515 appendix F): ``header..signature``.

The protected header is exactly ``{"alg":..,"kid":..}``, compact JSON in
that order, and base64url is unpadded and canonical; any other spelling is
refused, so a JWS has one text form (an ES256 signature is still randomised
and malleable: never identify a transaction by its signature). Only the
three ``ALGORITHMS`` are accepted ("none", HS256, ... are refused). Every
failure is ``InvalidSignature``, never a library exception.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from domain.errors import InvalidSignature
from infrastructure.signing.algorithms import ALGORITHMS
from infrastructure.signing.base64url import b64decode, b64encode

_MAX_HEADER_CHARS = 1024  # ours are ~120; the bound also caps JSON nesting depth


def protected_header(alg: str, kid: str) -> bytes:
    """BASE64URL of the header this package writes: exactly {"alg", "kid"}, compact."""
    return b64encode(json.dumps({"alg": alg, "kid": kid}, separators=(",", ":")).encode())


def signing_input(header: bytes, payload: bytes) -> bytes:
    return header + b"." + b64encode(payload)


def split_detached(jws: Any) -> tuple[str, str]:
    """(header, signature) segments of a detached compact JWS."""
    if not isinstance(jws, str):
        raise InvalidSignature("a JWS must be a string")
    parts = jws.split(".")
    if len(parts) != 3:
        raise InvalidSignature("not a compact JWS: expected 'header..signature'")
    if parts[1]:
        raise InvalidSignature("JWS payload part must be empty (detached payload)")
    return parts[0], parts[2]


def kid_of(jws: Any) -> str | None:
    """The kid a detached JWS names, or None if it is not one we could parse."""
    try:
        return parse_header(split_detached(jws)[0])[1]
    except InvalidSignature:
        return None


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        raise ValueError("duplicate member")
    return members


@functools.lru_cache(maxsize=1024)
def parse_header(segment: str) -> tuple[str, str]:
    """(alg, kid) of a protected header that is exactly {"alg", "kid"}. Cached: a node's transactions
    share one header, and every received one is asked for its kid twice (key learning, verifying); a
    refused header raises each time (exceptions are not cached)."""
    if len(segment) > _MAX_HEADER_CHARS:
        raise InvalidSignature("JWS header is too long")
    try:
        header = json.loads(b64decode(segment), object_pairs_hook=_unique_members)
    except ValueError as error:
        raise InvalidSignature(f"JWS header is not base64url-encoded JSON: {error}") from None
    if not isinstance(header, dict):
        raise InvalidSignature("JWS header is not a JSON object")
    alg, kid = header.get("alg"), header.get("kid")
    if not isinstance(alg, str) or alg not in ALGORITHMS:
        raise InvalidSignature(f"JWS alg {alg!r} is not accepted; expected one of {ALGORITHMS}")
    if not isinstance(kid, str) or not kid:
        raise InvalidSignature("JWS header has no kid")
    if len(header) != 2:
        extra = sorted(header.keys() - {"alg", "kid"})
        raise InvalidSignature(f"JWS header has unsupported members {extra}")
    return alg, kid
