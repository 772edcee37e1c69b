"""Sealed outbox cursors: what they hide, who can open them, and the key beside the keyring."""

from __future__ import annotations

import stat
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from infrastructure.signing import CursorSeal
from infrastructure.signing.cursor_seal import KEY_FILE, PREFIX

P = "urn:domain:p.example.net"
GID = str(uuid.uuid4())


@pytest.fixture
def seal(tmp_path: Path) -> CursorSeal:
    return CursorSeal.load_or_create(tmp_path)


def test_a_cursor_opens_to_its_position_for_its_caller_only(seal: CursorSeal) -> None:
    cursor = seal.seal(42, GID, P)

    assert seal.open(cursor, P) == (42, GID)
    assert seal.open(cursor, "urn:domain:q.example.com") is None
    assert seal.open(cursor, None) is None
    assert seal.open(seal.seal(0, None, None), None) == (0, None)


def test_cursors_for_one_position_differ_and_name_nothing(seal: CursorSeal) -> None:
    cursors = {seal.seal(7, GID, P) for _ in range(100)}

    assert len(cursors) == 100
    assert all(c.startswith(PREFIX) and GID not in c and uuid.UUID(GID).hex not in c for c in cursors)


def test_an_altered_cut_or_made_up_cursor_does_not_open(seal: CursorSeal, tmp_path: Path) -> None:
    cursor = seal.seal(7, GID, P)
    other = CursorSeal(bytes(32)).seal(7, GID, P)
    altered = [cursor[:i] + ("A" if cursor[i] != "A" else "B") + cursor[i + 1:] for i in range(3, len(cursor))]

    for bad in [*altered, cursor[:-1], cursor + "A", cursor[:-2], other, PREFIX, PREFIX + "!!", GID, ""]:
        assert seal.open(bad, P) is None, bad


def test_the_key_is_made_once_private_and_shared_by_processes(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        seals = list(pool.map(lambda _: CursorSeal.load_or_create(tmp_path), range(8)))
    cursor = seals[0].seal(3, GID, P)

    assert all(s.open(cursor, P) == (3, GID) for s in seals)
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE]  # no temporary file left


def test_a_damaged_key_file_is_refused_with_what_to_do(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_bytes(b"short")

    with pytest.raises(ValueError, match="remove it"):
        CursorSeal.load_or_create(tmp_path)
