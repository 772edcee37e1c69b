"""A node's own signing keys on disk: one active key, the retired ones kept.

Key files are 0600 in a 0700 directory, written to a temporary file and
``os.replace``d, under an exclusive lock so a rotation in another process is
never lost; a rotated key stays in the keyring, retired and still published,
so transactions it signed keep verifying; it no longer verifies editor tokens
(``token_keyset``: a rotation signs every editor out). A revoked key (``revoke``) is
still published, with the time from which it verifies nothing (the JWKS's
``revoked`` member; infrastructure/key_directory.py).
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infrastructure.signing.algorithms import DEFAULT_ALGORITHM
from infrastructure.signing.jwk import KID
from infrastructure.signing.keyset import KeySet
from infrastructure.signing.signing_key import SigningKey

KEYRING_FILE = "keyring.json"
_LOCK = ".lock"
def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _make_private_directory(directory: Path) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask; an old dir may be wider


def write_private(path: Path, data: bytes, *, replace: bool = True) -> None:
    """Atomically write path: a 0600 temporary file in the same directory, fsync, rename. With
    ``replace=False`` an existing path is kept (a hard link, which never replaces: two processes
    racing to create it both end up with the first one's content)."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if replace:
            os.replace(temporary, path)
        else:
            with suppress(FileExistsError):
                os.link(temporary, path)
            os.unlink(temporary)
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
    revoked_since: str | None = None  # it verifies nothing created at or after this time

    def index_entry(self) -> dict[str, Any]:
        entry = {
            "kid": self.key.kid,
            "alg": self.key.alg,
            "created_at": self.created_at,
            "retired_at": self.retired_at,
        }
        if self.revoked_since:
            entry["revoked_since"] = self.revoked_since
        return entry


def _load_record(directory: Path, entry: Any) -> _Record:
    kid = entry.get("kid") if isinstance(entry, dict) else None
    if not isinstance(kid, str) or not KID.fullmatch(kid):
        raise ValueError(f"{directory / KEYRING_FILE}: bad key entry {entry!r}")
    key = SigningKey.from_pem((directory / f"{kid}.pem").read_bytes(), checked_before=True)
    if key.kid != kid or key.alg != entry.get("alg"):
        raise ValueError(f"{directory / kid}.pem does not hold the {entry.get('alg')} key {kid}")
    return _Record(key, entry.get("created_at"), entry.get("retired_at"), entry.get("revoked_since"))


def _read_index(directory: Path) -> tuple[str, list[_Record]]:
    index = json.loads((directory / KEYRING_FILE).read_bytes())
    if not isinstance(index, dict) or not isinstance(index.get("keys"), list):
        raise ValueError(f"{directory / KEYRING_FILE} is not a keyring index")
    records = [_load_record(directory, entry) for entry in index["keys"]]
    active = index.get("active")
    if active not in {record.key.kid for record in records}:
        raise ValueError(f"{directory / KEYRING_FILE}: active key {active!r} is not in the keyring")
    return active, records


def _write_keyring(
    directory: Path, active: str, records: list[_Record], new_key: SigningKey | None
) -> None:
    # The key file first: the index never names a key file that is not on disk.
    if new_key is not None:
        write_private(directory / f"{new_key.kid}.pem", new_key.to_pem())
    index = {"active": active, "keys": [record.index_entry() for record in records]}
    write_private(directory / KEYRING_FILE, json.dumps(index, indent=2).encode() + b"\n")


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
        if not (directory / KEYRING_FILE).exists():
            return cls._create_with(directory, key)
        keyring = cls.load(directory)
        keyring._activate(key)
        return keyring

    @classmethod
    def _create_with(cls, directory: Path, key: SigningKey) -> Keyring:
        _make_private_directory(directory)
        with _locked(directory):
            if (directory / KEYRING_FILE).exists():
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

    def revoke(self, kid: str, since: str) -> SigningKey:
        """Revoke a key from ``since`` on (a normalised wire timestamp); an active key is rotated
        out first. Returns the active key after it."""
        with _locked(self._directory):
            active, records = _read_index(self._directory)
        if kid not in {r.key.kid for r in records}:
            raise ValueError(f"no key {kid} in this keyring")
        if kid == active:
            self.rotate()
        with _locked(self._directory):
            active, records = _read_index(self._directory)
            records = [replace(r, revoked_since=min(since, r.revoked_since or since)) if r.key.kid == kid else r
                       for r in records]
            _write_keyring(self._directory, active, records, new_key=None)
        self._set(active, records)
        return self._active

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        keys, revoked = [], []
        for record in sorted(self._records, key=lambda r: r.key.kid != self._active.kid):
            jwk: dict[str, Any] = record.key.public_jwk()
            if record.key.kid == self._active.kid:
                jwk["status"] = "active"
            elif record.revoked_since:
                jwk.update(status="revoked", retired_at=record.retired_at)
                revoked.append({"kid": record.key.kid, "since": record.revoked_since})
            else:
                jwk.update(status="retired", retired_at=record.retired_at)
            keys.append(jwk)
        return {"keys": keys, "revoked": revoked} if revoked else {"keys": keys}

    def keyset(self) -> KeySet:
        """Every key: what verifies this node's own transactions (revoked keys too, for old ones)."""
        return self._keyset

    def token_keyset(self) -> KeySet:
        """The keys editor tokens are checked with: the active key only. A rotation (what an admin does
        after a suspected compromise) signs every editor out; transactions keep verifying with ``keyset``."""
        return self._token_keyset

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
        self._keyset = KeySet.of_keys(r.key for r in records)
        self._token_keyset = KeySet.of_keys([self._active])

    def __repr__(self) -> str:
        return f"Keyring({str(self._directory)!r}, active={self._active.kid!r})"
