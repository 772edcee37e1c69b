"""Unpadded base64url (RFC 7515 section 2) with one canonical spelling per value."""

from __future__ import annotations

import base64
import binascii


def b64encode(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def b64decode(text: str) -> bytes:
    """Decode unpadded base64url; refuse padding, other characters and stray bits."""
    raw = text.encode("ascii")  # UnicodeEncodeError is a ValueError
    try:
        data = base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except binascii.Error:
        raise ValueError("not base64url") from None
    if b64encode(data) != raw:  # the one canonical spelling, checked by re-encoding
        raise ValueError("not canonical unpadded base64url")
    return data


def b64text(data: bytes) -> str:
    return b64encode(data).decode("ascii")


def int_bytes(value: int) -> bytes:
    """The big-endian bytes of a non-negative integer, without leading zeros (JWK ``n``, ``e``)."""
    return value.to_bytes((value.bit_length() + 7) // 8, "big")
