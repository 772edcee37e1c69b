"""Outbox cursors sealed for one caller: a position it may hold without learning what lies there.

A page of the outbox ends at the last entry the node examined, which may be
one the caller may not see, so the cursor is not that entry's gid: it is the
position (outbox sequence and gid) sealed with AES-GCM-SIV under a key of
this node, with the caller's name as associated data. Such a cursor is

- opaque: a fresh random nonce each time, so two cursors for one position
  differ, and a caller polling an idle outbox cannot tell that entries it
  may not see were added;
- tamper-proof: a changed, cut or made-up cursor does not open;
- one caller's: it opens only for the caller it was sealed for (anonymous
  callers share one identity, as they share what they may see).

The key (32 random bytes, ``cursor.key`` beside the keyring, 0600) is made
on first use, by whichever process gets there first. Losing it only makes
the cursors handed out so far unknown: their holders list gids once
(docs/protocol.md, "Pull").
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV

from infrastructure.signing.base64url import b64decode, b64text
from infrastructure.signing.keyring import write_private

PREFIX = "c1."  # the form's version: a gid never starts so
KEY_FILE = "cursor.key"
_KEY_BYTES = 32
_NONCE = 12
_POSITION = 8 + 16  # sequence (big-endian) and gid (16 bytes; zeros before the first entry)
_TAG = 16
_CONTEXT = b"fedsync outbox cursor\x00"


class CursorSeal:
    def __init__(self, key: bytes) -> None:
        if len(key) != _KEY_BYTES:
            raise ValueError(f"a cursor key is {_KEY_BYTES} bytes")
        self._aead = AESGCMSIV(key)

    @classmethod
    def load_or_create(cls, directory: Path) -> CursorSeal:
        path = directory / KEY_FILE
        if not path.exists():
            write_private(path, os.urandom(_KEY_BYTES), replace=False)
        key = path.read_bytes()
        if len(key) != _KEY_BYTES:
            raise ValueError(f"{path} is not a cursor key ({_KEY_BYTES} bytes); remove it and a new one is made "
                             "(peers then list gids once)")
        return cls(key)

    @staticmethod
    def sealed(text: str) -> bool:
        """Whether ``text`` has the form of a sealed cursor (not whether it opens)."""
        return text.startswith(PREFIX)

    def seal(self, seq: int, gid: str | None, caller: str | None) -> str:
        """The cursor of outbox position ``seq`` (entry ``gid``; None at the start) for ``caller``."""
        position = seq.to_bytes(8, "big") + (uuid.UUID(gid).bytes if gid else bytes(16))
        nonce = os.urandom(_NONCE)
        return PREFIX + b64text(nonce + self._aead.encrypt(nonce, position, _associated(caller)))

    def open(self, cursor: str, caller: str | None) -> tuple[int, str | None] | None:
        """The position a cursor sealed for ``caller`` names; None for anything else."""
        if not self.sealed(cursor):
            return None
        try:
            raw = b64decode(cursor[len(PREFIX):])
        except ValueError:
            return None
        if len(raw) != _NONCE + _POSITION + _TAG:
            return None
        try:
            position = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], _associated(caller))
        except InvalidTag:
            return None
        gid = position[8:]
        return int.from_bytes(position[:8], "big"), str(uuid.UUID(bytes=gid)) if any(gid) else None


def _associated(caller: str | None) -> bytes:
    return _CONTEXT + (caller or "").encode()
