"""Who has a node's data dir open.

Every process that opens the node (``fedsync serve`` and each of its
workers, ``fedsync sync``, any CLI command that opens the store) holds a
shared ``flock`` on ``<data dir>/node.lock`` until it closes the node; the
kernel drops it when the process dies, however it dies. ``fedsync restore
--force`` takes the lock exclusively, without waiting, before it replaces
anything: it refuses to pull the store and keys out from under a running
node, whose acknowledged writes would then go to files no longer there. A
process that opens the node while a restore holds the lock waits for it.

It guards one machine's processes; PostgreSQL restores also refuse a
database that is not empty, which covers serving processes elsewhere.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = "node.lock"
log = logging.getLogger("fedsync.node")


class DataDirInUse(Exception):
    """Another process has the node in this data dir open."""


class SharedHold:
    """A process's shared hold on a data dir (``release`` once the node is closed)."""

    def __init__(self, data_dir: Path) -> None:
        self._fd: int | None = None
        try:
            self._fd = _open(data_dir)
        except OSError as e:  # a read-only data dir (keys and config mounted, PostgreSQL store): no restore into it
            log.warning("cannot hold %s (%s): a restore --force would not see this process", data_dir / LOCK_FILE,
                        e.strerror)
            return
        fcntl.flock(self._fd, fcntl.LOCK_SH)  # waits while a restore holds it

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # the lock goes with the descriptor
            self._fd = None


@contextmanager
def exclusive(data_dir: Path) -> Iterator[None]:
    """Hold the data dir alone, or raise ``DataDirInUse`` at once if any process has the node open."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = _open(data_dir)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataDirInUse(f"the node in {data_dir} is open in another process (fedsync serve, sync or "
                               "another command): stop it first") from None
        yield
    finally:
        os.close(fd)


def _open(data_dir: Path) -> int:
    return os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
