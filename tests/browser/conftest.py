"""Browser tests: Debian's Chromium (``/usr/bin/chromium``, installed by ``.ci/run``) driven by Playwright,
against real ``fedsync serve`` processes (the e2e fixtures)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.e2e.conftest import module_spawn, spawn  # noqa: F401 - fixtures for the browser tests too

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        yield chromium
        chromium.close()
