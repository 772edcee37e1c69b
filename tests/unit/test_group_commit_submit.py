"""GroupCommit.submit (domain/commit.py): a command whose caller does not wait (the event loop's edits on SQLite)
is committed by the group commit's own thread, or with the group of a waiting caller that leads, and its
``finished`` is called once, with its result or its error."""

from __future__ import annotations

import threading
import time

from domain.commit import Command, GroupCommit
from domain.errors import StaleHead


def finished_into(results: dict[str, object], done: threading.Event, expected: int):
    lock = threading.Lock()

    def finished(command: Command[str]) -> None:
        with lock:
            results[command.prepare()] = command.error or command.result
            if len(results) == expected:
                done.set()

    return finished


def test_submitted_commands_are_committed_by_the_group_commit_s_thread_together() -> None:
    batches: list[list[str]] = []
    first_started, release_first = threading.Event(), threading.Event()
    threads: list[str] = []

    def save(batch: list[Command[str]]) -> bool:
        threads.append(threading.current_thread().name)
        if not batches:
            first_started.set()
            assert release_first.wait(10)
        batches.append([command.prepare() for command in batch])
        for command in batch:
            if command.prepare() == "refused":
                command.finish(error=StaleHead("not a head", heads=[]))
            else:
                command.finish(result=command.prepare().upper())
        return True

    group: GroupCommit[str] = GroupCommit(save, lock=threading.RLock(), attempts=1)
    results: dict[str, object] = {}
    done = threading.Event()
    finished = finished_into(results, done, 5)

    group.submit(Command(prepare=lambda: "first", finished=finished))
    assert first_started.wait(10)
    for name in ("a", "b", "refused", "c"):  # queued while the first commit runs: the next group
        group.submit(Command(prepare=lambda name=name: name, finished=finished))
    release_first.set()

    assert done.wait(10)
    assert batches == [["first"], ["a", "b", "refused", "c"]]
    assert set(threads) == {"group-commit"}
    assert {k: v for k, v in results.items() if k != "refused"} == {"first": "FIRST", "a": "A", "b": "B", "c": "C"}
    assert isinstance(results["refused"], StaleHead)


def test_a_waiting_caller_and_submitted_commands_hand_the_lead_to_each_other() -> None:
    """A thread that leads commits the submitted commands queued with it; a submitted command queued behind
    a waiting caller's group gets the group commit's thread, and a waiting caller queued behind it its turn."""
    batches: list[list[str]] = []
    holding, release = threading.Event(), threading.Event()

    def save(batch: list[Command[str]]) -> bool:
        if not batches:
            holding.set()
            assert release.wait(10)
        batches.append([command.prepare() for command in batch])
        for command in batch:
            command.finish(result=command.prepare())
        return True

    group: GroupCommit[str] = GroupCommit(save, lock=threading.RLock(), attempts=1)
    results: dict[str, object] = {}
    done = threading.Event()
    answers: list[str] = []
    leader = threading.Thread(target=lambda: answers.append(group.run(Command(prepare=lambda: "waiting"))))
    leader.start()
    assert holding.wait(10)
    group.submit(Command(prepare=lambda: "submitted", finished=finished_into(results, done, 1)))
    behind = threading.Thread(target=lambda: answers.append(group.run(Command(prepare=lambda: "behind"))))
    behind.start()
    deadline = time.monotonic() + 10
    while group.queued() < 2 and time.monotonic() < deadline:  # bounded
        time.sleep(0.001)
    release.set()
    leader.join(10)
    behind.join(10)

    assert done.wait(10) and results == {"submitted": "submitted"}
    assert sorted(answers) == ["behind", "waiting"]
    assert batches == [["waiting"], ["submitted", "behind"]]
    assert group.queued() == 0


def test_a_caller_s_failing_finished_does_not_keep_the_others_of_its_group_waiting() -> None:
    started, release = threading.Event(), threading.Event()

    def save(batch: list[Command[str]]) -> bool:
        if batch[0].prepare() == "first":
            started.set()
            assert release.wait(10)
        for command in batch:
            command.finish(result=command.prepare())
        return True

    def broken(command: Command[str]) -> None:
        raise RuntimeError("the event loop is closed")

    group: GroupCommit[str] = GroupCommit(save, lock=threading.RLock(), attempts=1)
    results: dict[str, object] = {}
    done = threading.Event()
    finished = finished_into(results, done, 2)
    group.submit(Command(prepare=lambda: "first", finished=finished))
    assert started.wait(10)
    group.submit(Command(prepare=lambda: "broken", finished=broken))
    group.submit(Command(prepare=lambda: "after", finished=finished))
    waited: list[str] = []
    waiter = threading.Thread(target=lambda: waited.append(group.run(Command(prepare=lambda: "waited"))))
    waiter.start()
    deadline = time.monotonic() + 10
    while group.queued() < 3 and time.monotonic() < deadline:  # bounded
        time.sleep(0.001)
    release.set()
    waiter.join(10)

    assert done.wait(10) and results == {"first": "first", "after": "after"} and waited == ["waited"]
