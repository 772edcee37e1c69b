"""The three signature algorithms, each bound to one key type.

EdDSA (Ed25519), ES256 (EC P-256, raw 64-byte r||s signatures) and RS256
(RSA of at least 2048 bits). A public key is only ever used with the one
algorithm ``alg_of`` names for it.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.exceptions import InvalidSignature as BadSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

ALGORITHMS = ("EdDSA", "ES256", "RS256")
# Measured by bench/signing.py (docs/decisions/signing.md): RSA-2048 verifies 2-3x
# faster than ES256 or Ed25519 and still signs well above 2,000/s for local edits.
DEFAULT_ALGORITHM = "RS256"
MIN_RSA_BITS = 2048
P256_BYTES = 32

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey
# (signature, signing input) -> None; raises BadSignature, which the key set turns into
# the product's InvalidSignature
Verify = Callable[[bytes, bytes], None]

def alg_of(public_key: object) -> str:
    """The one algorithm a public key may be used with; ValueError if unsupported."""
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "EdDSA"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, ec.SECP256R1):
            raise ValueError(
                f"EC curve {public_key.curve.name} is not supported; only P-256 (ES256) is"
            )
        return "ES256"
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < MIN_RSA_BITS:
            raise ValueError(
                f"RSA key of {public_key.key_size} bits is too small; "
                f"at least {MIN_RSA_BITS} bits are required"
            )
        return "RS256"
    raise ValueError(
        f"unsupported key type {type(public_key).__name__}; "
        f"use Ed25519, EC P-256 or RSA of at least {MIN_RSA_BITS} bits"
    )


def generate(alg: str) -> PrivateKey:
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=MIN_RSA_BITS)
    raise ValueError(f"unknown algorithm {alg!r}; expected one of {ALGORITHMS}")


def sign_raw(private_key: PrivateKey, alg: str, data: bytes) -> bytes:
    if alg == "EdDSA":
        return private_key.sign(data)
    if alg == "ES256":
        r, s = decode_dss_signature(private_key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(P256_BYTES, "big") + s.to_bytes(P256_BYTES, "big")
    return private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def verifier(public_key: PublicKey, alg: str) -> Verify:
    """A verify function for one key, built once per kid with its fixed parameters."""
    if alg == "EdDSA":
        return public_key.verify
    if alg == "ES256":
        ecdsa = ec.ECDSA(hashes.SHA256())

        def verify_es256(signature: bytes, data: bytes) -> None:
            if len(signature) != 2 * P256_BYTES:
                raise BadSignature
            r = int.from_bytes(signature[:P256_BYTES], "big")
            s = int.from_bytes(signature[P256_BYTES:], "big")
            public_key.verify(encode_dss_signature(r, s), data, ecdsa)

        return verify_es256
    size, pkcs1, sha256 = (public_key.key_size + 7) // 8, padding.PKCS1v15(), hashes.SHA256()

    def verify_rs256(signature: bytes, data: bytes) -> None:
        if len(signature) != size:
            raise BadSignature
        public_key.verify(signature, data, pkcs1, sha256)

    return verify_rs256
