"""GroupCommit.submit (domain/commit.py): a command whose caller does not wait (the event loop's edits)
is committed by the group commit's own thread, or with the group of a waiting caller that leads, and its
``finished`` is called once, with its result or its error."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from domain.commit import Command, GroupCommit
from domain.errors import StaleHead


class Told:
    """What the ``finished`` of submitted commands were told (a result or an error, by command), and ``done``
    once ``expected`` of them were."""

    def __init__(self, expected: int) -> None:
        self.results: dict[str, object] = {}
        self.done = threading.Event()
        self._expected = expected
        self._lock = threading.Lock()

    def finished(self, command: Command[str]) -> None:
        with self._lock:
            self.results[command.prepare()] = command.error or command.result
            if len(self.results) == self._expected:
                self.done.set()


class FirstCommitHeld:
    """A save that holds its first group until ``release`` is set, records each group's command names and the
    thread that saved it, and finishes each command with ``outcome`` of its name (an exception: its error)."""

    def __init__(self, outcome: Callable[[str], object] = lambda name: name) -> None:
        self.batches: list[list[str]] = []
        self.threads: list[str] = []
        self.started, self.release = threading.Event(), threading.Event()
        self.outcome = outcome

    def __call__(self, batch: list[Command[str]]) -> bool:
        self.threads.append(threading.current_thread().name)
        if not self.started.is_set():
            self.started.set()
            assert self.release.wait(10)
        self.batches.append([command.prepare() for command in batch])
        for command in batch:
            outcome = self.outcome(command.prepare())
            if isinstance(outcome, BaseException):
                command.finish(error=outcome)
            else:
                command.finish(result=outcome)
        return True


def wait_until_queued(group: GroupCommit[str], count: int) -> None:
    deadline = time.monotonic() + 10
    while group.queued() < count and time.monotonic() < deadline:  # bounded
        time.sleep(0.001)


def test_submitted_commands_are_committed_by_the_group_commit_s_thread_together() -> None:
    save = FirstCommitHeld(lambda name: StaleHead("not a head", heads=[]) if name == "refused" else name.upper())
    group: GroupCommit[str] = GroupCommit(save, lock=threading.RLock(), attempts=1)
    told = Told(5)

    group.submit(Command(prepare=lambda: "first", finished=told.finished))
    assert save.started.wait(10)
    for name in ("a", "b", "refused", "c"):  # queued while the first commit runs: the next group
        group.submit(Command(prepare=lambda name=name: name, finished=told.finished))
    save.release.set()

    results = told.results
    assert told.done.wait(10)
    assert save.batches == [["first"], ["a", "b", "refused", "c"]]
    assert set(save.threads) == {"group-commit"}
    assert {k: v for k, v in results.items() if k != "refused"} == {"first": "FIRST", "a": "A", "b": "B", "c": "C"}
    assert isinstance(results["refused"], StaleHead)


def test_a_waiting_caller_and_submitted_commands_hand_the_lead_to_each_other() -> None:
    """A thread that leads commits the submitted commands queued with it; a submitted command queued behind
    a waiting caller's group gets the group commit's thread, and a waiting caller queued behind it its turn."""
    save = FirstCommitHeld()
    group: GroupCommit[str] = GroupCommit(save, lock=threading.RLock(), attempts=1)
    told = Told(1)
    answers: list[str] = []
    leader = threading.Thread(target=lambda: answers.append(group.run(Command(prepare=lambda: "waiting"))))
    leader.start()
    assert save.started.wait(10)
    group.submit(Command(prepare=lambda: "submitted", finished=told.finished))
    behind = threading.Thread(target=lambda: answers.append(group.run(Command(prepare=lambda: "behind"))))
    behind.start()
    wait_until_queued(group, 2)
    save.release.set()
    leader.join(10)
    behind.join(10)

    results, done = told.results, told.done
    assert done.wait(10) and results == {"submitted": "submitted"}
    assert sorted(answers) == ["behind", "waiting"]
    assert save.batches == [["waiting"], ["submitted", "behind"]]
    assert group.queued() == 0


def test_a_caller_s_failing_finished_does_not_keep_the_others_of_its_group_waiting() -> None:
    def broken(command: Command[str]) -> None:
        raise RuntimeError("the event loop is closed")

    save = FirstCommitHeld()
    group: GroupCommit[str] = GroupCommit(save, lock=threading.RLock(), attempts=1)
    told = Told(2)
    group.submit(Command(prepare=lambda: "first", finished=told.finished))
    assert save.started.wait(10)
    group.submit(Command(prepare=lambda: "broken", finished=broken))
    group.submit(Command(prepare=lambda: "after", finished=told.finished))
    waited: list[str] = []
    waiter = threading.Thread(target=lambda: waited.append(group.run(Command(prepare=lambda: "waited"))))
    waiter.start()
    wait_until_queued(group, 3)
    save.release.set()
    waiter.join(10)

    results, done = told.results, told.done
    assert done.wait(10) and results == {"first": "first", "after": "after"} and waited == ["waited"]


def test_a_closed_group_commit_stops_its_thread_and_refuses_submissions() -> None:
    group: GroupCommit[str] = GroupCommit(FirstCommitHeld(), lock=threading.RLock(), attempts=1)
    told = Told(1)
    group._save.release.set()  # type: ignore[attr-defined]
    group.submit(Command(prepare=lambda: "before", finished=told.finished))
    results, done = told.results, told.done
    assert done.wait(10) and results == {"before": "before"}
    committer = next(t for t in threading.enumerate() if t.name == "group-commit" and t is group._committer)

    group.close()
    committer.join(10)

    assert not committer.is_alive()
    with pytest.raises(RuntimeError, match="closed"):
        group.submit(Command(prepare=lambda: "after", finished=told.finished))


def test_before_group_gets_the_hints_of_each_group_and_its_failure_fails_no_command() -> None:
    save = FirstCommitHeld()
    group: GroupCommit[str] = GroupCommit(save, lock=threading.RLock(), attempts=1)
    seen: list[list[object]] = []

    def before_group(hints: list[object]) -> None:
        seen.append(hints)
        if "fails" in hints:
            raise RuntimeError("the read failed")  # each command reads what it needs itself then

    group.before_group = before_group
    told = Told(4)
    group.submit(Command(prepare=lambda: "first", finished=told.finished, hint="h-first"))
    assert save.started.wait(10)
    for name, hint in (("a", "fails"), ("b", None), ("c", "h-c")):
        group.submit(Command(prepare=lambda name=name: name, finished=told.finished, hint=hint))
    save.release.set()

    assert told.done.wait(10) and told.results == {"first": "first", "a": "a", "b": "b", "c": "c"}
    assert seen == [["h-first"], ["fails", "h-c"]]  # commands without a hint are left out


def test_close_commits_what_was_submitted_before_it_then_stops_the_thread() -> None:
    """An edit submitted while a commit runs is queued: closing the node then must neither drop it (its
    caller would wait for an answer forever) nor take new ones."""
    save = FirstCommitHeld()
    group: GroupCommit[str] = GroupCommit(save, lock=threading.RLock(), attempts=1)
    told = Told(3)
    group.submit(Command(prepare=lambda: "first", finished=told.finished))
    assert save.started.wait(10)
    group.submit(Command(prepare=lambda: "queued-1", finished=told.finished))
    group.submit(Command(prepare=lambda: "queued-2", finished=told.finished))
    committer = group._committer
    assert committer is not None
    closing = threading.Thread(target=group.close)
    closing.start()
    deadline = time.monotonic() + 10
    while not group._closed and time.monotonic() < deadline:  # bounded
        time.sleep(0.001)
    with pytest.raises(RuntimeError, match="closed"):
        group.submit(Command(prepare=lambda: "late", finished=told.finished))
    save.release.set()
    closing.join(10)

    results, done = told.results, told.done
    assert not closing.is_alive() and not committer.is_alive()
    assert done.wait(0) and results == {"first": "first", "queued-1": "queued-1", "queued-2": "queued-2"}
    assert save.batches == [["first"], ["queued-1", "queued-2"]]
