"""Keyset pagination of the editor API's lists (items, conflicts).

A list is ordered by ``(key, gid)``, unique thanks to the gid, so a page
starts strictly after the last row of the previous one and stays stable
while rows are added. The cursor handed to clients is that row's
``[key, gid]`` as base64url JSON: opaque to them, checked when it comes
back (anything else is ``InvalidCursor``, 400). A query asks for one row
more than the page holds; that row's presence is what says a next page exists.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from api.errors import InvalidCursor


def encode_cursor(key: str, gid: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([key, gid])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        key, gid = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(key, str) and isinstance(gid, str):
            return key, gid
    except (binascii.Error, ValueError, TypeError):
        pass
    raise InvalidCursor(f"not a cursor of this list: {cursor[:60]!r}")


def after(cursor: str, key: str, gid: str) -> tuple[str, list[str]]:
    """The SQL condition, and its parameters, for the rows after ``cursor`` in ``(key, gid)`` order."""
    last_key, last_gid = decode_cursor(cursor)
    return f"({key} > ? OR ({key} = ? AND {gid} > ?))", [last_key, last_key, last_gid]


def split(rows: list[dict[str, Any]], limit: int, key: str, gid: str) -> tuple[list[dict[str, Any]], str | None]:
    """The page (the first ``limit`` of ``limit + 1`` rows asked for) and the next page's cursor, if any."""
    page = rows[:limit]
    return page, (encode_cursor(page[-1][key], page[-1][gid]) if len(rows) > limit else None)
