"""How much CPU a markdown parse may use, counted without full garbage collections of the process's heap.

The budget is the rendering thread's CPU time (``time.thread_time``), not wall time, so threads rendering side by
side do not push each other over. A garbage collection runs in whichever thread allocated the object that tipped
it, so a parse can pay for a full collection of the whole process's heap: in a process holding millions of
objects one collection took seconds of thread time (a test worker once counted 3.7 s against 1 s of parsing,
and an ordinary 87 kB text was shown as written). That time is the heap's, not the text's: every thread's full
(oldest-generation) collections are timed (``gc.callbacks``) and a budget subtracts those its thread ran since it
was made. Young-generation collections stay counted: they scale with what the parse itself allocates, so a text
built to allocate cannot hide its own cost in them.
"""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

RENDER_BUDGET = 1.0  # seconds of CPU a text's markdown parse may take before it is shown as written
_CHECK_EVERY = 256  # parser steps between two looks at the clock


class OverBudget(Exception):
    pass


_OLDEST = 2  # the generation a full collection collects


class _Collections(threading.local):
    """This thread's time in full garbage collections so far, and when the running one started."""

    def __init__(self) -> None:
        self.spent, self.started = 0.0, 0.0


_collections = _Collections()


def _time_collection(phase: str, info: dict[str, Any]) -> None:
    if info["generation"] != _OLDEST:
        return
    if phase == "start":
        _collections.started = time.thread_time()
    else:
        _collections.spent += time.thread_time() - _collections.started


gc.callbacks.append(_time_collection)


def _parse_time() -> float:
    """This thread's CPU time so far, less its full garbage collections."""
    return time.thread_time() - _collections.spent


class Budget:
    """Counts a parser's steps, and every ``_CHECK_EVERY`` of them raises ``OverBudget`` once this thread has
    used ``seconds`` of CPU outside full garbage collections since the budget was made."""

    __slots__ = ("steps", "until")

    def __init__(self, seconds: float = RENDER_BUDGET) -> None:
        self.steps, self.until = 0, _parse_time() + seconds

    def step(self) -> None:
        self.steps += 1
        if self.steps % _CHECK_EVERY == 0:
            self.check()

    def check(self) -> None:
        if _parse_time() > self.until:
            raise OverBudget
