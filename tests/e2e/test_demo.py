"""`fedsync demo`: the first thing a new user runs must work end to end."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.slow(50)
def test_the_demo_relays_through_the_hub_splits_a_head_and_merges_it():
    result = subprocess.run([sys.executable, "-m", "api", "demo"], capture_output=True, text=True, timeout=300,
                            env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})

    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    split = out.split("after both edits arrived everywhere")[1].split("a merge editor")[0]
    merged = out.split("after the merge reached everyone")[1]
    assert "open conflicts per node: hub=1 east=1 west=1" in split
    assert "open conflicts per node: hub=0 east=0 west=0" in merged
    assert "<<<<<<<" in out  # the proposal marked the conflicting lines
    assert merged.count("east.example.org (1)") == 3 and "(2)" not in merged
