"""Signing keys, detached JWS and JWKS: the only module that calls ``cryptography``.

Rules it enforces:

- Three algorithms, each bound to one key type: EdDSA (Ed25519), ES256 (EC P-256,
  raw 64-byte r||s signatures) and RS256 (RSA of at least 2048 bits). Anything
  else in a header ("none", HS256, ...) is refused, and the header's ``alg`` must
  be the alg of the key its ``kid`` names, so a public key is never used with
  another algorithm (no HMAC-with-the-public-key confusion).
- A ``kid`` is the RFC 7638 thumbprint (SHA-256) of the public key. A JWK whose
  ``kid`` is not its thumbprint is refused, so one kid names one key everywhere
  and merging key sets cannot substitute a key.
- A signature is a compact JWS with a detached payload (RFC 7515 appendix F):
  ``header..signature``. The protected header is exactly ``{"alg":..,"kid":..}``,
  compact JSON in that order, and base64url is unpadded and canonical; any other
  spelling is refused, so a JWS has one text form (an ES256 signature is still
  randomised and malleable: never identify a transaction by its signature).
- Every verification failure is ``InvalidSignature`` (``UnknownKey`` when the
  kid is not in the set), never a library exception.
- Key files are 0600 in a 0700 directory, written to a temporary file and
  ``os.replace``d; a rotated key stays in the keyring, retired and still
  published, so transactions it signed keep verifying.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from cryptography.exceptions import InvalidSignature as _BadSignature
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from domain.errors import InvalidSignature, UnknownKey

ALGORITHMS = ("EdDSA", "ES256", "RS256")
# Measured by bench/signing.py (docs/decisions/signing.md): RSA-2048 verifies 2-3x
# faster than ES256 or Ed25519 and still signs well above 2,000/s for local edits.
DEFAULT_ALGORITHM = "RS256"
MIN_RSA_BITS = 2048

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey
_Verify = Callable[[bytes, bytes], None]  # (signature, signing input); raises _BadSignature

_P256_BYTES = 32
_MAX_HEADER_CHARS = 1024  # ours are ~120; the bound also caps JSON nesting depth
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_KID = re.compile(r"[A-Za-z0-9_-]{43}")  # base64url of a SHA-256 digest
KEYRING_FILE = _INDEX = "keyring.json"
_LOCK = ".lock"


# --- base64url -----------------------------------------------------------------


def _b64encode(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _b64decode(text: str) -> bytes:
    """Decode unpadded base64url; refuse padding, other characters and stray bits."""
    raw = text.encode("ascii")  # UnicodeEncodeError is a ValueError
    try:
        data = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except binascii.Error:
        raise ValueError("not base64url") from None
    if _b64encode(data) != raw:  # the one canonical spelling, checked by re-encoding
        raise ValueError("not canonical unpadded base64url")
    return data


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


# --- keys and algorithms -----------------------------------------------------------


def _alg_of(public_key: Any) -> str:
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


def _thumbprint_members(public_key: PublicKey) -> dict[str, str]:
    """The RFC 7638 required members of the public JWK, values base64url."""

    def b64(data: bytes) -> str:
        return _b64encode(data).decode("ascii")

    if isinstance(public_key, ed25519.Ed25519PublicKey):
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"crv": "Ed25519", "kty": "OKP", "x": b64(raw)}
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        point = public_key.public_numbers()
        x, y = point.x.to_bytes(_P256_BYTES, "big"), point.y.to_bytes(_P256_BYTES, "big")
        return {"crv": "P-256", "kty": "EC", "x": b64(x), "y": b64(y)}
    numbers = public_key.public_numbers()
    return {"e": b64(_int_bytes(numbers.e)), "kty": "RSA", "n": b64(_int_bytes(numbers.n))}


def _public_jwk(public_key: PublicKey) -> dict[str, str]:
    """Public JWK with kid (RFC 7638 thumbprint), alg and use; ValueError if unsupported."""
    alg = _alg_of(public_key)
    members = _thumbprint_members(public_key)
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode("ascii")
    kid = _b64encode(hashlib.sha256(canonical).digest()).decode("ascii")
    return {**members, "kid": kid, "alg": alg, "use": "sig"}


def _protected_header(alg: str, kid: str) -> bytes:
    """BASE64URL of the header this module writes: exactly {"alg", "kid"}, compact."""
    return _b64encode(json.dumps({"alg": alg, "kid": kid}, separators=(",", ":")).encode())


def _sign_raw(private_key: Any, alg: str, data: bytes) -> bytes:
    if alg == "EdDSA":
        return private_key.sign(data)
    if alg == "ES256":
        r, s = decode_dss_signature(private_key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big")
    return private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def _verifier(public_key: Any, alg: str) -> _Verify:
    """A verify function for one key, built once per kid with its fixed parameters."""
    if alg == "EdDSA":
        return public_key.verify
    if alg == "ES256":
        ecdsa = ec.ECDSA(hashes.SHA256())

        def verify_es256(signature: bytes, data: bytes) -> None:
            if len(signature) != 2 * _P256_BYTES:
                raise _BadSignature
            r = int.from_bytes(signature[:_P256_BYTES], "big")
            s = int.from_bytes(signature[_P256_BYTES:], "big")
            public_key.verify(encode_dss_signature(r, s), data, ecdsa)

        return verify_es256
    size, pkcs1, sha256 = (public_key.key_size + 7) // 8, padding.PKCS1v15(), hashes.SHA256()

    def verify_rs256(signature: bytes, data: bytes) -> None:
        if len(signature) != size:
            raise _BadSignature
        public_key.verify(signature, data, pkcs1, sha256)

    return verify_rs256


# --- JWK parsing -----------------------------------------------------------------


def _member(jwk: dict[str, Any], name: str) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"JWK member {name!r} is missing or not a string")
    try:
        return _b64decode(value)
    except ValueError as error:
        raise ValueError(f"JWK member {name!r}: {error}") from None


def _public_key_from_jwk(jwk: dict[str, Any]) -> PublicKey:
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "OKP" and crv == "Ed25519":
        x = _member(jwk, "x")
        if len(x) != 32:
            raise ValueError("Ed25519 JWK 'x' must be 32 bytes")
        return ed25519.Ed25519PublicKey.from_public_bytes(x)
    if kty == "EC" and crv == "P-256":
        x, y = _member(jwk, "x"), _member(jwk, "y")
        if len(x) != _P256_BYTES or len(y) != _P256_BYTES:
            raise ValueError("P-256 JWK 'x' and 'y' must be 32 bytes each")
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + x + y)
    if kty == "RSA":
        n, e = _member(jwk, "n"), _member(jwk, "e")
        return rsa.RSAPublicNumbers(int.from_bytes(e, "big"), int.from_bytes(n, "big")).public_key()
    raise ValueError(
        f"JWK key type {kty!r} (crv {crv!r}) is not supported; "
        "expected OKP/Ed25519, EC/P-256 or RSA"
    )


@dataclass(frozen=True, slots=True)
class _PublicEntry:
    jwk: dict[str, str]  # canonical public JWK, as re-encoded from the key
    public_key: PublicKey
    verify: _Verify
    header: str  # the protected header segment SigningKey writes for this key

    @classmethod
    def of(cls, public_key: PublicKey) -> _PublicEntry:
        jwk = _public_jwk(public_key)
        header = _protected_header(jwk["alg"], jwk["kid"]).decode("ascii")
        return cls(jwk, public_key, _verifier(public_key, jwk["alg"]), header)

    @classmethod
    def parse(cls, jwk: Any) -> _PublicEntry:
        """Load and check one public JWK; ValueError with the reason if it is not acceptable."""
        if not isinstance(jwk, dict):
            raise ValueError("a JWK must be a JSON object")
        private = sorted(_PRIVATE_MEMBERS & jwk.keys())
        if private:
            raise ValueError(f"JWK {jwk.get('kid')!r} holds private key members {private}")
        entry = cls.of(_public_key_from_jwk(jwk))
        kid, alg = entry.jwk["kid"], entry.jwk["alg"]
        if jwk.get("alg", alg) != alg:
            raise ValueError(f"JWK {kid}: alg {jwk['alg']!r} does not fit a {jwk['kty']} key")
        if jwk.get("use", "sig") != "sig":
            raise ValueError(f"JWK {kid}: use {jwk['use']!r} is not 'sig'")
        if jwk.get("kid", kid) != kid:
            raise ValueError(f"JWK kid {jwk['kid']!r} is not the RFC 7638 thumbprint {kid}")
        return entry


# --- JWS -------------------------------------------------------------------------


def _split_detached(jws: Any) -> tuple[str, str]:
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
        return _parse_header(_split_detached(jws)[0])[1]
    except InvalidSignature:
        return None


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        raise ValueError("duplicate member")
    return members


def _parse_header(segment: str) -> tuple[str, str]:
    """(alg, kid) of a protected header that is exactly {"alg", "kid"}."""
    if len(segment) > _MAX_HEADER_CHARS:
        raise InvalidSignature("JWS header is too long")
    try:
        header = json.loads(_b64decode(segment), object_pairs_hook=_unique_members)
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


class SigningKey:
    """A private key of one of ALGORITHMS that makes detached compact JWS."""

    __slots__ = ("private_key", "alg", "kid", "_header")

    def __init__(self, private_key: PrivateKey) -> None:
        if not isinstance(
            private_key,
            ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
        ):
            raise ValueError(f"unsupported private key type {type(private_key).__name__}")
        jwk = _public_jwk(private_key.public_key())
        self.private_key = private_key
        self.alg: str = jwk["alg"]
        self.kid: str = jwk["kid"]
        self._header = _protected_header(self.alg, self.kid)  # the same for every signature

    @classmethod
    def generate(cls, alg: str = DEFAULT_ALGORITHM) -> SigningKey:
        if alg == "EdDSA":
            return cls(ed25519.Ed25519PrivateKey.generate())
        if alg == "ES256":
            return cls(ec.generate_private_key(ec.SECP256R1()))
        if alg == "RS256":
            return cls(rsa.generate_private_key(public_exponent=65537, key_size=MIN_RSA_BITS))
        raise ValueError(f"unknown algorithm {alg!r}; expected one of {ALGORITHMS}")

    @classmethod
    def from_pem(cls, data: bytes) -> SigningKey:
        """Load an unencrypted PEM private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC)."""
        try:
            private_key = serialization.load_pem_private_key(data, password=None)
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
        signing_input = self._header + b"." + _b64encode(payload)
        signature = _sign_raw(self.private_key, self.alg, signing_input)
        return (self._header + b".." + _b64encode(signature)).decode("ascii")

    def public_jwk(self) -> dict[str, str]:
        return _public_jwk(self.private_key.public_key())

    def __repr__(self) -> str:  # never the key material
        return f"SigningKey(alg={self.alg!r}, kid={self.kid!r})"


class KeySet:
    """Public keys by kid, each loaded once, that verify detached JWS."""

    def __init__(self, jwks: Iterable[dict[str, Any]] = ()) -> None:
        self._entries: dict[str, _PublicEntry] = {}
        # Our own header for each key, already checked: verify skips parsing it.
        self._by_header: dict[str, _PublicEntry] = {}
        for jwk in jwks:
            self._add(_PublicEntry.parse(jwk))

    @classmethod
    def from_jwks(cls, document: dict[str, Any]) -> KeySet:
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("a JWKS document must be an object with a 'keys' list")
        return cls(document["keys"])

    @classmethod
    def _of_keys(cls, keys: Iterable[SigningKey]) -> KeySet:
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
        header_segment, signature_segment = _split_detached(jws)
        entry = self._by_header.get(header_segment)
        if entry is None:
            self._refuse_header(header_segment)
        kid = entry.jwk["kid"]
        try:
            signature = _b64decode(signature_segment)
        except ValueError as error:
            raise InvalidSignature(f"JWS signature is not base64url: {error}", kid=kid) from None
        signing_input = header_segment.encode("ascii") + b"." + _b64encode(payload)
        try:
            entry.verify(signature, signing_input)
        except _BadSignature:
            raise InvalidSignature(
                f"signature does not match the payload and key {kid}", kid=kid
            ) from None
        return kid

    def _refuse_header(self, header_segment: str) -> NoReturn:
        """Say why a header is refused: verify takes only the exact header sign writes."""
        alg, kid = _parse_header(header_segment)
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


# --- keyring on disk -------------------------------------------------------------


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _make_private_directory(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask; an old dir may be wider


def _write_private(path: Path, data: bytes) -> None:
    """Atomically replace path: a 0600 temporary file in the same directory, fsync, rename."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    directory_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory_fd)  # make the rename itself durable
    finally:
        os.close(directory_fd)


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Exclusive lock on the keyring, so a rotation in another process is never lost."""
    fd = os.open(directory / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class _Record:
    key: SigningKey
    created_at: str
    retired_at: str | None = None

    def index_entry(self) -> dict[str, Any]:
        return {
            "kid": self.key.kid,
            "alg": self.key.alg,
            "created_at": self.created_at,
            "retired_at": self.retired_at,
        }


def _load_record(directory: Path, entry: Any) -> _Record:
    kid = entry.get("kid") if isinstance(entry, dict) else None
    if not isinstance(kid, str) or not _KID.fullmatch(kid):
        raise ValueError(f"{directory / _INDEX}: bad key entry {entry!r}")
    key = SigningKey.from_pem((directory / f"{kid}.pem").read_bytes())
    if key.kid != kid or key.alg != entry.get("alg"):
        raise ValueError(f"{directory / kid}.pem does not hold the {entry.get('alg')} key {kid}")
    return _Record(key, entry.get("created_at"), entry.get("retired_at"))


def _read_index(directory: Path) -> tuple[str, list[_Record]]:
    index = json.loads((directory / _INDEX).read_bytes())
    if not isinstance(index, dict) or not isinstance(index.get("keys"), list):
        raise ValueError(f"{directory / _INDEX} is not a keyring index")
    records = [_load_record(directory, entry) for entry in index["keys"]]
    active = index.get("active")
    if active not in {record.key.kid for record in records}:
        raise ValueError(f"{directory / _INDEX}: active key {active!r} is not in the keyring")
    return active, records


def _write_keyring(
    directory: Path, active: str, records: list[_Record], new_key: SigningKey | None
) -> None:
    # The key file first: the index never names a key file that is not on disk.
    if new_key is not None:
        _write_private(directory / f"{new_key.kid}.pem", new_key.to_pem())
    index = {"active": active, "keys": [record.index_entry() for record in records]}
    _write_private(directory / _INDEX, json.dumps(index, indent=2).encode() + b"\n")


class Keyring:
    """A node's own signing keys in a directory: one active, the retired ones kept."""

    def __init__(self, directory: Path, active: str, records: list[_Record]) -> None:
        self._directory = directory
        self._set(active, records)

    @classmethod
    def create(cls, directory: Path, alg: str = DEFAULT_ALGORITHM) -> Keyring:
        return cls._create_with(Path(directory), SigningKey.generate(alg))

    @classmethod
    def load(cls, directory: Path) -> Keyring:
        directory = Path(directory)
        return cls(directory, *_read_index(directory))

    @classmethod
    def import_pem(cls, directory: Path, pem: bytes) -> Keyring:
        """A keyring whose active key is pem: created, or added to an existing one."""
        key, directory = SigningKey.from_pem(pem), Path(directory)
        if not (directory / _INDEX).exists():
            return cls._create_with(directory, key)
        keyring = cls.load(directory)
        keyring._activate(key)
        return keyring

    @classmethod
    def _create_with(cls, directory: Path, key: SigningKey) -> Keyring:
        _make_private_directory(directory)
        with _locked(directory):
            if (directory / _INDEX).exists():
                raise FileExistsError(f"a keyring already exists in {directory}")
            records = [_Record(key, _utc_now())]
            _write_keyring(directory, key.kid, records, new_key=key)
        return cls(directory, key.kid, records)

    @property
    def active(self) -> SigningKey:
        return self._active

    def rotate(self, alg: str | None = None) -> SigningKey:
        """Make a new active key; the previous one is retired but still verifies."""
        key = SigningKey.generate(alg or self._active.alg)
        self._activate(key)
        return key

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        keys = []
        for record in sorted(self._records, key=lambda r: r.key.kid != self._active.kid):
            jwk: dict[str, Any] = record.key.public_jwk()
            if record.key.kid == self._active.kid:
                jwk["status"] = "active"
            else:
                jwk.update(status="retired", retired_at=record.retired_at)
            keys.append(jwk)
        return {"keys": keys}

    def keyset(self) -> KeySet:
        return self._keyset

    def _activate(self, key: SigningKey) -> None:
        # Re-read under the lock: another process may have rotated since we loaded.
        with _locked(self._directory):
            _, records = _read_index(self._directory)
            now = _utc_now()
            records = [
                replace(r, retired_at=None if r.key.kid == key.kid else r.retired_at or now)
                for r in records
            ]
            is_new = key.kid not in {r.key.kid for r in records}
            if is_new:
                records.append(_Record(key, now))
            _write_keyring(self._directory, key.kid, records, new_key=key if is_new else None)
        self._set(key.kid, records)

    def _set(self, active: str, records: list[_Record]) -> None:
        self._records = records
        self._active = next(r.key for r in records if r.key.kid == active)
        self._keyset = KeySet._of_keys(r.key for r in records)

    def __repr__(self) -> str:
        return f"Keyring({str(self._directory)!r}, active={self._active.kid!r})"
