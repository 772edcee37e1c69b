"""Settings of the reliability suite: CI counts by default, deeper runs with FEDSYNC_LONG=1.

CI mode is fixed-seed (Hypothesis ``derandomize``) so a CI run is
reproducible; the long mode explores new schedules on every run. Each count
can also be set on its own (``FEDSYNC_RELIABILITY_<NAME>=<n>``).
"""

from __future__ import annotations

import json
import os

LONG = os.environ.get("FEDSYNC_LONG", "") not in ("", "0")


def count(name: str, ci: int, long: int) -> int:
    """``ci`` in a CI run, ``long`` with FEDSYNC_LONG=1, or FEDSYNC_RELIABILITY_<NAME>."""
    override = os.environ.get(f"FEDSYNC_RELIABILITY_{name.upper()}")
    if override:
        return int(override)
    return long if LONG else ci


def record(test: str, **figures: object) -> None:
    """Append a test's figures (examples run, kills survived, ...) to FEDSYNC_RELIABILITY_REPORT, if set."""
    path = os.environ.get("FEDSYNC_RELIABILITY_REPORT")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps({"test": test, "long": LONG, **figures}, sort_keys=True) + "\n")

