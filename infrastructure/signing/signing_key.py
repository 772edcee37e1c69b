"""A node's private signing key, which makes detached compact JWS."""

from __future__ import annotations

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from infrastructure.signing.algorithms import DEFAULT_ALGORITHM, PrivateKey, generate, sign_raw
from infrastructure.signing.base64url import b64encode
from infrastructure.signing.jwk import public_jwk
from infrastructure.signing.jws import protected_header, signing_input


class SigningKey:
    """A private key of one of ALGORITHMS that makes detached compact JWS."""

    __slots__ = ("private_key", "alg", "kid", "_header")

    def __init__(self, private_key: PrivateKey) -> None:
        if not isinstance(
            private_key,
            ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
        ):
            raise ValueError(f"unsupported private key type {type(private_key).__name__}")
        jwk = public_jwk(private_key.public_key())
        self.private_key = private_key
        self.alg: str = jwk["alg"]
        self.kid: str = jwk["kid"]
        self._header = protected_header(self.alg, self.kid)  # the same for every signature

    @classmethod
    def generate(cls, alg: str = DEFAULT_ALGORITHM) -> SigningKey:
        return cls(generate(alg))

    @classmethod
    def from_pem(cls, data: bytes, *, checked_before: bool = False) -> SigningKey:
        """Load an unencrypted PEM private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).

        ``checked_before``: a key of the node's own keyring, which was checked when it was made or
        imported; an RSA key's consistency check (about 75 ms) is then skipped, on every node start and
        every CLI command."""
        try:
            private_key = serialization.load_pem_private_key(data, password=None,
                                                             unsafe_skip_rsa_key_validation=checked_before)
        except (ValueError, TypeError, UnsupportedAlgorithm) as error:
            # TypeError: the PEM is encrypted; keys are stored unencrypted in a 0700 directory
            raise ValueError(f"cannot load the PEM private key: {error}") from None
        return cls(private_key)  # type: ignore[arg-type]  # checked in __init__

    def to_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def sign(self, payload: bytes) -> str:
        """Detached compact JWS of payload: BASE64URL(header) + '..' + BASE64URL(signature)."""
        signature = sign_raw(self.private_key, self.alg, signing_input(self._header, payload))
        return (self._header + b".." + b64encode(signature)).decode("ascii")

    def public_jwk(self) -> dict[str, str]:
        return public_jwk(self.private_key.public_key())

    def __repr__(self) -> str:  # never the key material
        return f"SigningKey(alg={self.alg!r}, kid={self.kid!r})"
