"""Sets of public keys by kid (JWKS documents) that verify detached JWS.

The header's ``alg`` must be the alg of the key its ``kid`` names, so a
public key is never used with another algorithm (no HMAC-with-the-public-key
confusion). Every verification failure is ``InvalidSignature``
(``UnknownKey`` when the kid is not in the set).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NoReturn

from domain.errors import InvalidSignature, UnknownKey
from infrastructure.signing.algorithms import BadSignature, PublicKey, Verify, verifier
from infrastructure.signing.base64url import b64decode
from infrastructure.signing.jwk import parse_jwk, public_jwk
from infrastructure.signing.jws import parse_header, protected_header, signing_input, split_detached
from infrastructure.signing.signing_key import SigningKey


@dataclass(frozen=True, slots=True)
class _PublicEntry:
    jwk: dict[str, str]  # canonical public JWK, as re-encoded from the key
    public_key: PublicKey
    verify: Verify
    header: str  # the protected header segment SigningKey writes for this key

    @classmethod
    def of(cls, public_key: PublicKey, jwk: dict[str, str] | None = None) -> _PublicEntry:
        jwk = jwk or public_jwk(public_key)
        header = protected_header(jwk["alg"], jwk["kid"]).decode("ascii")
        return cls(jwk, public_key, verifier(public_key, jwk["alg"]), header)


class KeySet:
    """Public keys by kid, each loaded once, that verify detached JWS."""

    def __init__(self, jwks: Iterable[dict[str, Any]] = ()) -> None:
        self._entries: dict[str, _PublicEntry] = {}
        # Our own header for each key, already checked: verify skips parsing it.
        self._by_header: dict[str, _PublicEntry] = {}
        for jwk in jwks:
            self._add(_PublicEntry.of(*parse_jwk(jwk)))

    @classmethod
    def from_jwks(cls, document: dict[str, Any]) -> KeySet:
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("a JWKS document must be an object with a 'keys' list")
        return cls(document["keys"])

    @classmethod
    def of_keys(cls, keys: Iterable[SigningKey]) -> KeySet:
        keyset = cls()
        for key in keys:
            keyset._add(_PublicEntry.of(key.private_key.public_key()))
        return keyset

    @property
    def kids(self) -> list[str]:
        return list(self._entries)

    def public_key(self, kid: str) -> PublicKey:
        return self._entry(kid).public_key

    def alg_of(self, kid: str) -> str:
        """The one algorithm this key verifies (tokens must not choose another)."""
        return self._entry(kid).jwk["alg"]

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [dict(entry.jwk) for entry in self._entries.values()]}

    def merged(self, other: KeySet) -> KeySet:
        # A kid is its key's thumbprint, so the same kid in both sets is the same key.
        keyset = KeySet()
        for entry in [*self._entries.values(), *other._entries.values()]:
            keyset._add(entry)
        return keyset

    def verify(self, jws: str, payload: bytes) -> str:
        """The kid that signed payload; InvalidSignature (or UnknownKey) otherwise."""
        header_segment, signature_segment = split_detached(jws)
        entry = self._by_header.get(header_segment)
        if entry is None:
            self._refuse_header(header_segment)
        kid = entry.jwk["kid"]
        try:
            signature = b64decode(signature_segment)
        except ValueError as error:
            raise InvalidSignature(f"JWS signature is not base64url: {error}", kid=kid) from None
        try:
            entry.verify(signature, signing_input(header_segment.encode("ascii"), payload))
        except BadSignature:
            raise InvalidSignature(
                f"signature does not match the payload and key {kid}", kid=kid
            ) from None
        return kid

    def _refuse_header(self, header_segment: str) -> NoReturn:
        """Say why a header is refused: verify takes only the exact header sign writes."""
        alg, kid = parse_header(header_segment)
        entry = self._entry(kid)
        if alg != entry.jwk["alg"]:
            raise InvalidSignature(
                f"JWS alg {alg} does not match key {kid} ({entry.jwk['alg']})", kid=kid
            )
        raise InvalidSignature(
            'JWS header is not in canonical form {"alg":...,"kid":...} (compact, in that order)',
            kid=kid,
        )

    def _add(self, entry: _PublicEntry) -> None:
        self._entries[entry.jwk["kid"]] = entry
        self._by_header[entry.header] = entry

    def _entry(self, kid: str) -> _PublicEntry:
        try:
            return self._entries[kid]
        except KeyError:
            raise UnknownKey(f"no key with kid {kid!r} in this key set", kid=kid) from None

    def __contains__(self, kid: object) -> bool:
        return kid in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"KeySet(kids={self.kids!r})"

