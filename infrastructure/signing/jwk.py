"""Public keys as JWK (RFC 7517), named by their RFC 7638 thumbprint.

A ``kid`` is the thumbprint (SHA-256) of the public key. A JWK whose ``kid``
is not its thumbprint, whose ``alg`` does not fit its key type, whose ``use``
is not ``sig``, or that holds private members, is refused: one kid names one
key everywhere, so merging key sets cannot substitute a key.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from infrastructure.signing.algorithms import P256_BYTES, PublicKey, alg_of
from infrastructure.signing.base64url import b64decode, b64text, int_bytes

KID = re.compile(r"[A-Za-z0-9_-]{43}")  # base64url of a SHA-256 digest
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def _thumbprint_members(public_key: PublicKey) -> dict[str, str]:
    """The RFC 7638 required members of the public JWK, values base64url."""
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"crv": "Ed25519", "kty": "OKP", "x": b64text(raw)}
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        point = public_key.public_numbers()
        x, y = point.x.to_bytes(P256_BYTES, "big"), point.y.to_bytes(P256_BYTES, "big")
        return {"crv": "P-256", "kty": "EC", "x": b64text(x), "y": b64text(y)}
    numbers = public_key.public_numbers()
    return {"e": b64text(int_bytes(numbers.e)), "kty": "RSA", "n": b64text(int_bytes(numbers.n))}


def public_jwk(public_key: PublicKey) -> dict[str, str]:
    """Public JWK with kid (RFC 7638 thumbprint), alg and use; ValueError if unsupported."""
    alg = alg_of(public_key)
    members = _thumbprint_members(public_key)
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode("ascii")
    kid = b64text(hashlib.sha256(canonical).digest())
    return {**members, "kid": kid, "alg": alg, "use": "sig"}


def parse_jwk(jwk: Any) -> tuple[PublicKey, dict[str, str]]:
    """The key of one public JWK and its canonical JWK; ValueError with the reason if not acceptable."""
    if not isinstance(jwk, dict):
        raise ValueError("a JWK must be a JSON object")
    private = sorted(_PRIVATE_MEMBERS & jwk.keys())
    if private:
        raise ValueError(f"JWK {jwk.get('kid')!r} holds private key members {private}")
    public_key = _public_key(jwk)
    canonical = public_jwk(public_key)
    kid, alg = canonical["kid"], canonical["alg"]
    if jwk.get("alg", alg) != alg:
        raise ValueError(f"JWK {kid}: alg {jwk['alg']!r} does not fit a {jwk['kty']} key")
    if jwk.get("use", "sig") != "sig":
        raise ValueError(f"JWK {kid}: use {jwk['use']!r} is not 'sig'")
    if jwk.get("kid", kid) != kid:
        raise ValueError(f"JWK kid {jwk['kid']!r} is not the RFC 7638 thumbprint {kid}")
    return public_key, canonical


def _member(jwk: dict[str, Any], name: str) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"JWK member {name!r} is missing or not a string")
    try:
        return b64decode(value)
    except ValueError as error:
        raise ValueError(f"JWK member {name!r}: {error}") from None


def _public_key(jwk: dict[str, Any]) -> PublicKey:
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "OKP" and crv == "Ed25519":
        x = _member(jwk, "x")
        if len(x) != 32:
            raise ValueError("Ed25519 JWK 'x' must be 32 bytes")
        return ed25519.Ed25519PublicKey.from_public_bytes(x)
    if kty == "EC" and crv == "P-256":
        x, y = _member(jwk, "x"), _member(jwk, "y")
        if len(x) != P256_BYTES or len(y) != P256_BYTES:
            raise ValueError("P-256 JWK 'x' and 'y' must be 32 bytes each")
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + x + y)
    if kty == "RSA":
        n, e = _member(jwk, "n"), _member(jwk, "e")
        return rsa.RSAPublicNumbers(int.from_bytes(e, "big"), int.from_bytes(n, "big")).public_key()
    raise ValueError(
        f"JWK key type {kty!r} (crv {crv!r}) is not supported; "
        "expected OKP/Ed25519, EC/P-256 or RSA"
    )
