"""GroupCommit (domain/commit.py) hands the lead on and wakes each waiting thread once: threads that queued
while a commit ran are committed together by one of them, and none is woken only to wait again."""

from __future__ import annotations

import threading
import time

from domain.commit import Command, GroupCommit


class CountingEvent(threading.Event):
    def __init__(self) -> None:
        super().__init__()
        self.returns = 0

    def wait(self, timeout: float | None = None) -> bool:
        woke = super().wait(timeout)
        self.returns += 1
        return woke


def test_commands_queued_during_a_commit_are_the_next_batch_and_each_waiter_wakes_once() -> None:
    batches: list[list[str]] = []
    first_started, release_first = threading.Event(), threading.Event()

    def save(batch: list[Command[str]]) -> bool:
        if not batches:
            first_started.set()
            assert release_first.wait(10)
        batches.append([command.prepare() for command in batch])
        for command in batch:
            command.finish(result=command.prepare())
        return True

    group: GroupCommit[str] = GroupCommit(save, lock=threading.RLock(), attempts=1)
    commands = [Command(prepare=lambda i=i: f"c{i}", woken=CountingEvent()) for i in range(6)]
    results: dict[int, str] = {}

    def run(i: int) -> None:
        results[i] = group.run(commands[i])

    threads = [threading.Thread(target=run, args=(0,))]
    threads[0].start()
    assert first_started.wait(10)
    threads += [threading.Thread(target=run, args=(i,)) for i in range(1, 6)]
    for thread in threads[1:]:
        thread.start()
    deadline = time.monotonic() + 10
    while group.queued() < 5 and time.monotonic() < deadline:  # bounded
        time.sleep(0.001)
    release_first.set()
    for thread in threads:
        thread.join(10)

    assert batches[0] == ["c0"] and sorted(batches[1]) == [f"c{i}" for i in range(1, 6)] and len(batches) == 2
    assert results == {i: f"c{i}" for i in range(6)}
    assert commands[0].woken.returns == 0  # the first led at once
    assert [command.woken.returns for command in commands[1:]] == [1] * 5  # the successor, then the others: once
    assert group.queued() == 0
    group.run(Command(prepare=lambda: "after"))  # nobody leads any more: the next command leads at once
    assert batches[-1] == ["after"]
