"""An admin watches and drives federation in a real browser (headless Chromium) on two real nodes, on both
stores: sees the peer, syncs now (what the node refused shows with its reason), reads the pending, refusals and
keys pages, in English and in Dutch; then, with the peer down, sees a background pull's failure appear without
a reload, syncs until the breaker opens and retries it closed. Every page is screenshot into the test's
temporary folder and checked with axe-core."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from playwright.sync_api import Browser, Page, expect

from api.ui.i18n import CATALOGS
from infrastructure.federation_client import PeerError
from infrastructure.local_cluster import NodeProcess
from infrastructure.refusals import KEPT
from tests.browser.test_conflict_pages import shot, sign_in
from tests.e2e.conftest import Spawner, peer
from tests.e2e.test_conflicts_e2e import editor, ok
from tests.e2e.test_federation import pull

PAGES = {"peers": "", "pending": "/pending", "refusals": "/refusals", "keys": "/keys"}


def english_strings() -> set[str]:
    """The pages' English strings that Dutch changes (the text before a placeholder), as the conflict test."""
    with open(CATALOGS / "nl" / "LC_MESSAGES" / "messages.po", "rb") as po:
        return {m.id.split("%(")[0].strip() for m in read_po(po) if m.id and m.id != m.string}


def dutch_texts(browser: Browser, a: NodeProcess, folder: Path) -> list[str]:
    """Each federation page's text as an admin whose browser prefers Dutch sees it."""
    page = browser.new_context(locale="nl-NL").new_page()
    sign_in(page, a, "ada", "admin")
    texts = []
    for name, path in PAGES.items():
        page.goto(f"{a.base_url}/ui/federation{path}")
        texts.append(page.locator("body").inner_text())
        shot(page, folder, f"{name}-nl")
    page.context.close()
    return texts


def breaker(page: Page, node: NodeProcess) -> str:
    return page.get_by_role("row", name=re.compile(re.escape(node.name))).locator(".breaker").inner_text()


@pytest.mark.slow(30)
def test_an_admin_syncs_and_retries_a_peer_and_reads_refusals_pending_and_keys_in_the_browser(
        spawn: Spawner, browser: Browser, tmp_path: Path) -> None:
    a, b = spawn.many("a", "b")
    peer(a, b, accept=("item",))  # a takes b's items only: b's tag is refused, with the reason
    peer(b, a)
    with editor(b, "bo") as bo:
        ok(bo.post("/tags", json={"name": "maths"}), 201)
        ok(bo.post("/items", json={"title": "From b", "markdown": "made on b\n"}), 201)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[object] = []
    page.on("pageerror", lambda error: errors.append(error))
    sign_in(page, a, "ada", "admin")
    page.get_by_role("link", name="Federation").click()
    expect(page.get_by_role("table")).to_contain_text(b.base_url)
    shot(page, tmp_path, "peers")

    page.get_by_role("button", name=f"Sync now {b.name}").click()
    expect(page.get_by_role("status")).to_contain_text(f"Pulled from {b.name}")
    expect(page.get_by_role("status")).to_contain_text("1 refused")
    page.get_by_role("link", name="Refusals").click()
    expect(page.get_by_role("table")).to_contain_text("entity type 'tag' is not accepted")
    expect(page.locator("main")).to_contain_text(f"the last {KEPT}")
    shot(page, tmp_path, "refusals")
    for name in ("pending", "keys"):
        page.get_by_role("link", name=name.title()).click()
        shot(page, tmp_path, name)
    expect(page.get_by_role("table")).to_contain_text("active")

    left = sorted({s for text in dutch_texts(browser, a, tmp_path) for s in english_strings()
                   if len(s) > 4 and s in text})
    assert left == [], left

    b.stop()  # the peer is down: the background puller's failure shows without a reload
    page.clock.install()
    page.goto(f"{a.base_url}/ui/federation")
    with pytest.raises(PeerError):
        pull(a, b)
    page.clock.fast_forward(10_500)
    expect(page.locator("#peers")).to_contain_text("Connection refused")
    for _ in range(4):  # Sync now says why, until the breaker opens (at the fifth failure)
        page.get_by_role("button", name=f"Sync now {b.name}").click()
        expect(page.get_by_role("alert")).to_contain_text(f"Sync with {b.name} failed")
    assert breaker(page, b) == "open"
    shot(page, tmp_path, "sync-failed")
    page.get_by_role("button", name=f"Retry now {b.name}").click()
    expect(page.get_by_role("status")).to_contain_text("breaker closed")
    assert breaker(page, b) == "closed"
    page.set_viewport_size({"width": 390, "height": 844})  # a phone: the table scrolls in its own box
    shot(page, tmp_path, "peers-phone")
    assert errors == []
