"""What one save commits besides events, and the group commit of local commands.

``CommitExtras`` is everything the application asks the store to write in
the same database transaction as a save's events: the gid index of the new
transactions, received transactions held for their parents, pending rows
now settled, and the pull cursor reached (and, filled by the store, the
item rows its read models wrote then). The store writes it through its
registered commit hooks (``infrastructure/persistence``); a new kind of row
that must commit with the events is a new field here and a new hook there.

``GroupCommit`` runs local commands so that concurrent editors share one
commit (one fsync, one projection) instead of queueing for one each.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable
from uuid import UUID

from eventsourcing.persistence import IntegrityError

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexEntry:
    """Where a transaction is stored: its aggregate and the version it has there."""

    gid: str
    originator_id: UUID
    originator_version: int
    # The transaction itself, when the saver has it: the projection then reads it instead of decoding it again.
    tx: dict[str, Any] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class HeldTransaction:
    """A received transaction waiting for parents that its sender is asked for."""

    gid: str
    sender: str
    tx: dict[str, Any]
    missing: list[str]
    received_at: str


@dataclass(frozen=True)
class PullCursor:
    """Where a pull from ``peer`` got to: the cursor its last applied page ended with (opaque text)."""

    peer: str
    cursor: str


@dataclass(frozen=True)
class CommitExtras:
    index: Sequence[IndexEntry] = ()
    held: Sequence[HeldTransaction] = ()
    settled: Sequence[str] = ()  # pending gids no longer waiting
    pull_cursor: PullCursor | None = None
    # Filled by the store's in-commit projection, when it projected the save: each item row it wrote, by item gid
    # (the documents read model's row), so a local command answers with its result without reading it back.
    views: dict[str, dict[str, Any]] | None = field(default=None, compare=False)

    def __bool__(self) -> bool:
        return bool(self.index or self.held or self.settled or self.pull_cursor)


@runtime_checkable
class TransactionIndex(Protocol):
    """What the application needs of its recorder beyond the library's: lookups by gid."""

    def locate(self, gids: Sequence[str]) -> list[dict[str, Any]]:
        """Stored rows (gid, seq, originator_id, originator_version, topic, state) of these gids."""
        ...

    def existing(self, ids: Sequence[UUID]) -> set[UUID]:
        """Which of these aggregates have events stored."""
        ...

    def stored_after(self, position: int, limit: int) -> list[tuple[int, UUID]]:
        """(sequence number, aggregate) of the first ``limit`` events stored after ``position``, in order."""
        ...


def chunked(events: Sequence[T], max_weight: int, weight: Callable[[T], int]) -> list[list[T]]:
    """The events in order, cut into runs of at most ``max_weight`` (a heavier event stands alone)."""
    chunks: list[list[T]] = [[]]
    size = 0
    for event in events:
        w = weight(event)
        if chunks[-1] and size + w > max_weight:
            chunks.append([])
            size = 0
        chunks[-1].append(event)
        size += w
    return chunks


R = TypeVar("R")


class GroupCommit(Generic[R]):
    """Commands of concurrent threads, applied in order and committed together.

    The first thread that finds no commit running leads: it takes every
    queued command and hands them to ``commit`` (which applies them in
    order, each seeing the ones before it, and saves them in one database
    transaction), while the threads that queued them wait; then it wakes
    them, and hands the lead to the first command that queued meanwhile,
    which takes what is queued then. ``commit`` finishes every command it
    is given, with a result or an error. Each command's thread is woken
    once (its command done, or the lead handed to it): a condition shared
    by all waiters woke every waiting editor at each commit, and 16 editors
    spent 8 % of the interpreter's time waking only to wait again.

    The leader commits under ``lock`` (the application's write lock).

    A caller that must not wait (an event loop) ``submit``s its command
    instead: the command's ``finished`` is called, from the committing
    thread, once it is done, and when no caller leads, a thread of the
    group commit's own does (``_committer``, started on first use).
    """

    def __init__(self, save: Callable[[list[Command[R]]], bool], *, lock: threading.RLock, attempts: int) -> None:
        self._save = save  # applies and saves commands in one transaction (see ``_commit``)
        self._write_lock = lock
        self._attempts = attempts
        self._lock = threading.Lock()  # guards _queue and _leading
        self._queue: list[Command[R]] = []
        self._leading = False
        self._committer: threading.Thread | None = None  # leads for submitted commands
        self._committer_wanted = threading.Event()
        self._committer_leads = False  # the lead was handed to the group commit's thread (guarded by _lock)
        self._closed = False
        # Called by the leader with the ``hint``s of a group's commands before it applies them: the caller's
        # checks of the whole group, read at once (each command's own ``prepare`` reads what this did not).
        self.before_group: Callable[[list[Any]], None] | None = None

    def queued(self) -> int:
        with self._lock:
            return len(self._queue)

    def run(self, command: Command[R]) -> R:
        with self._lock:
            self._queue.append(command)
            waits, self._leading = self._leading, True
        if waits:
            command.woken.wait()  # done, or the lead is handed to this command
        if not command.done:
            self._lead(command)
        if command.error is not None:
            raise command.error
        assert command.result is not None
        return command.result

    def submit(self, command: Command[R]) -> None:
        """Queue a command whose caller does not wait: its ``finished`` is called once it is done."""
        assert command.finished is not None
        with self._lock:  # checked with the queue's lock held: a command queued is one ``close`` waits for
            if self._closed:
                raise RuntimeError("the group commit is closed")
            self._queue.append(command)
            lead, self._leading = not self._leading, True
        if lead:
            self._lead_for_submitted()

    def _lead_for_submitted(self) -> None:
        with self._lock:
            if self._committer is None:
                self._committer = threading.Thread(target=self._commit_submitted, name="group-commit", daemon=True)
                self._committer.start()
            self._committer_leads = True
        self._committer_wanted.set()

    def close(self, timeout: float = 30.0) -> None:
        """Refuse commands submitted from now on, commit those submitted before (each caller is told, as
        ever), then stop the group commit's own thread; waits for that at most ``timeout`` seconds."""
        with self._lock:
            self._closed = True
            committer = self._committer
        self._committer_wanted.set()
        if committer is not None and committer is not threading.current_thread():
            committer.join(timeout)

    def _commit_submitted(self) -> None:
        while True:  # a daemon thread, idle between groups; after ``close``, until no command is left to it
            self._committer_wanted.wait()
            self._committer_wanted.clear()
            while True:  # bounded by the commands queued: each lead takes them all
                with self._lock:
                    leads, self._committer_leads = self._committer_leads, False
                    if not leads and self._closed:
                        return
                if not leads:
                    break
                try:
                    self._lead(None)
                except Exception:  # every command of the group is finished with it: the thread goes on
                    log.exception("a group commit failed")

    def _lead(self, command: Command[R] | None) -> None:
        with self._lock:
            batch, self._queue = self._queue, []
        hints = [queued.hint for queued in batch if queued.hint is not None]
        if hints and self.before_group is not None:
            try:
                self.before_group(hints)
            except Exception:  # each command's prepare reads what it needs itself
                log.exception("reading a group's checks at once failed")
        try:
            with self._write_lock:
                self._commit(batch)
        finally:
            for queued in batch:
                if not queued.done:
                    queued.finish(error=RuntimeError("the commit of this command was interrupted"))
            with self._lock:
                successor = self._queue[0] if self._queue else None
                self._leading = successor is not None
            for queued in batch:
                if queued is not command:
                    queued.wake()
            if successor is not None and successor.finished is not None:
                self._lead_for_submitted()
            elif successor is not None:
                successor.woken.set()

    def _commit(self, batch: list[Command[R]]) -> None:
        """Save the batch in one transaction; a refused command fails alone (``save`` finishes it),
        and a failed group save (``save`` returns False) is retried command by command."""
        if len(batch) > 1 and self._save(batch):
            return
        for command in batch:  # alone, or one by one after a failed group save
            if command.done:
                continue
            for attempt in range(self._attempts):
                try:
                    self._save([command])
                    break
                except IntegrityError as e:
                    # Another process stored something meanwhile: start again from the store.
                    if attempt == self._attempts - 1:
                        command.finish(error=e)
                except BaseException as e:  # reported to the command's own thread
                    command.finish(error=e)
                    break


@dataclass(eq=False)
class Command(Generic[R]):
    """A local command waiting for its group's commit; ``prepare`` is the caller's."""

    prepare: Callable[..., Any]
    done: bool = False
    result: R | None = None
    error: BaseException | None = field(default=None)
    woken: threading.Event = field(default_factory=threading.Event, repr=False)  # done, or the lead handed to it
    finished: Callable[[Command[R]], None] | None = field(default=None, repr=False)  # a submitted command's
    hint: Any = field(default=None, repr=False)  # for ``GroupCommit.before_group``

    def finish(self, *, result: R | None = None, error: BaseException | None = None) -> None:
        self.result, self.error, self.done = result, error, True

    def wake(self) -> None:
        """Tell the caller it is done: its ``finished``, or its waiting thread."""
        if self.finished is None:
            self.woken.set()
            return
        try:
            self.finished(self)
        except Exception:  # the others of its group are still to be told
            log.exception("telling a submitted command's caller that it is done failed")
