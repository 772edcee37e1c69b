"""Signing keys, detached JWS and JWKS: the only package that calls ``cryptography``.

- ``algorithms``: the three algorithms, each bound to one key type;
- ``jwk``: public keys as JWK, named by their RFC 7638 thumbprint;
- ``jws``: the one text form of a detached compact JWS;
- ``signing_key``: a private key that signs; ``keyset``: public keys that verify;
- ``keyring``: a node's own keys on disk, rotated without losing the old ones;
- ``cursor_seal``: outbox cursors sealed for one caller (AES-GCM-SIV).

The names below are re-exported so ``from infrastructure.signing import ...``
keeps working; new code may import from the modules directly.
"""

from infrastructure.signing.algorithms import ALGORITHMS, DEFAULT_ALGORITHM
from infrastructure.signing.cursor_seal import CursorSeal
from infrastructure.signing.jws import kid_of
from infrastructure.signing.keyring import KEYRING_FILE, Keyring
from infrastructure.signing.keyset import KeySet
from infrastructure.signing.signing_key import SigningKey

__all__ = ["ALGORITHMS", "DEFAULT_ALGORITHM", "CursorSeal", "KEYRING_FILE", "KeySet", "Keyring", "SigningKey", "kid_of"]
