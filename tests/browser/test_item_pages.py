"""An editor works on items in a real browser (headless Chromium) against a real ``fedsync serve`` process, on
both stores: creates an item with a tag and a cross-reference (previewed first), edits it, reads the history
DAG and a version's diff, forks and deletes; meets the stale-head warning; the pages in Dutch. Then every page
reachable from the item list is visited: another editor's OWNER item is on none. Each page is screenshot into
the test's temporary folder and checked with axe-core."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from babel.messages.pofile import read_po
from playwright.sync_api import Browser, Page, expect

from api.ui.i18n import CATALOGS
from infrastructure.local_cluster import NodeProcess
from tests.browser.test_conflict_pages import shot, sign_in
from tests.e2e.conftest import Spawner
from tests.e2e.test_conflicts_e2e import editor, ok

MAX_PAGES = 60  # the crawl's bound


def reachable(page: Page, node: NodeProcess) -> dict[str, str]:
    """The text of every page under /ui reachable from the item list by links (GET only), at most MAX_PAGES."""
    seen: dict[str, str] = {}
    queue = [f"{node.base_url}/ui/items"]
    while queue and len(seen) < MAX_PAGES:
        url = queue.pop(0)
        if url in seen:
            continue
        page.goto(url)
        seen[url] = page.content()
        for href in page.locator("a[href]").evaluate_all("links => links.map(a => a.getAttribute('href'))"):
            target = urljoin(url, href).split("#")[0]
            if urlsplit(target).netloc == urlsplit(node.base_url).netloc and urlsplit(target).path.startswith(
                    "/ui/") and "/language/" not in target and target not in seen:
                queue.append(target)
    return seen


@pytest.mark.slow(40)
def test_an_editor_writes_items_in_the_browser_and_never_sees_another_editors_owner_item(
        spawn: Spawner, browser: Browser, tmp_path: Path) -> None:
    a = spawn("a")
    with editor(a, "ann") as ann:
        maths = ok(ann.post("/tags", json={"name": "maths"}), 201)["gid"]
        private = ok(ann.post("/items", json={"title": "Ann's private notes", "markdown": "secret\n",
                                              "scope": "OWNER"}), 201)
        target = ok(ann.post("/items", json={"title": "Museum list", "markdown": "- Rijksmuseum\n"}), 201)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, a, "bo", "editor")

    page.get_by_role("link", name="Items", exact=True).click()
    shot(page, tmp_path, "items")
    page.get_by_role("link", name="New item").click()
    page.get_by_label("Title", exact=True).fill("Field trip")
    page.get_by_label("Text (markdown)").fill(f"# Field trip\n\nSee {{item:{target['gid']}}}.\n")
    page.get_by_label("maths").check()
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview a.item-ref")).to_have_text("Museum list")
    shot(page, tmp_path, "new-item")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(page.locator("article.rendered a.item-ref")).to_have_attribute("href", f"/ui/items/{target['gid']}")
    gid = page.url.split("/ui/items/")[1].split("?")[0]
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Text (markdown)").fill(f"# Field trip\n\nSee {{item:{target['gid']}}}.\n\nBring lunch.\n")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("svg.history circle")).to_have_count(2)
    shot(page, tmp_path, "item")

    page.locator("svg.history a").first.click()  # the newest version
    expect(page.locator("pre.diff ins")).to_have_text(["+\n", "+Bring lunch.\n"])
    shot(page, tmp_path, "version")

    page.goto(f"{a.base_url}/ui/items/{gid}/edit")  # the stale-head path: someone edits meanwhile
    page.get_by_label("Text (markdown)").fill("my own text\n")
    with editor(a, "ann") as ann:
        current = ok(ann.get(f"/items/{gid}"))
        ok(ann.patch(f"/items/{gid}", headers={"If-Match": f'"{current["head"]}"'},
                     json={"markdown": current["markdown"] + "\nAnn was here.\n"}))
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("Someone else changed this item")
    expect(page.locator("pre.diff ins")).to_contain_text(["+Ann was here."])
    expect(page.get_by_label("Text (markdown)")).to_have_value("my own text\n")
    shot(page, tmp_path, "edit-stale")

    page.goto(f"{a.base_url}/ui/items/{gid}/fork")
    page.get_by_label("Title", exact=True).fill("Field trip, our way")
    shot(page, tmp_path, "fork")
    page.get_by_role("button", name="Fork").click()
    expect(page.locator("#sources-heading + ul a")).to_have_text("Field trip")
    fork = page.url.split("/ui/items/")[1].split("?")[0]
    page.get_by_role("link", name="Delete").click()
    shot(page, tmp_path, "delete")
    page.get_by_role("button", name="Delete the item").click()
    expect(page.get_by_role("status")).to_contain_text(fork)

    page.set_viewport_size({"width": 390, "height": 844})  # a phone: nothing wider than the screen
    for path, name in ((f"/ui/items/{gid}", "item-phone"), ("/ui/items", "items-phone"),
                       (f"/ui/items/{gid}/edit", "edit-phone")):
        page.goto(f"{a.base_url}{path}")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), name
        shot(page, tmp_path, name)

    pages = reachable(page, a)
    assert f"{a.base_url}/ui/items/{gid}" in pages and len(pages) > 8
    assert [url for url, html in pages.items() if "private notes" in html or private["gid"] in html] == []
    with editor(a, "bo") as bo:
        assert ok(bo.get(f"/items/{gid}"))["tags"] == [{"gid": maths, "name": "maths"}]


@pytest.mark.slow(20)
def test_the_item_pages_in_dutch_leave_no_english_string(spawn: Spawner, browser: Browser, tmp_path: Path) -> None:
    with open(CATALOGS / "nl" / "LC_MESSAGES" / "messages.po", "rb") as po:
        english = {m.id.split("%(")[0].strip() for m in read_po(po) if m.id and m.id != m.string}
    a = spawn("a")
    with editor(a, "ann") as ann:
        first = ok(ann.post("/items", json={"title": "Excursie", "markdown": "een\n"}), 201)
        ok(ann.patch(f"/items/{first['gid']}", headers={"If-Match": f'"{first["head"]}"'},
                     json={"markdown": "een\ntwee\n"}))
        second = ok(ann.get(f"/items/{first['gid']}"))["head"]
    page = browser.new_context(locale="nl-NL").new_page()
    sign_in(page, a, "bo", "editor")
    texts = []
    for path, name in (("/ui/items", "items-nl"), (f"/ui/items/{first['gid']}", "item-nl"),
                       (f"/ui/items/{first['gid']}/versions/{second}", "version-nl"),
                       (f"/ui/items/{first['gid']}/edit", "edit-nl"), ("/ui/items/new", "new-nl"),
                       (f"/ui/items/{first['gid']}/delete", "delete-nl")):
        page.goto(f"{a.base_url}{path}")
        texts.append(page.locator("body").inner_text())
        shot(page, tmp_path, name)

    assert "Nieuw item" in texts[0] and "Geschiedenis" in texts[1] and "Opslaan" in texts[3]
    for text in texts:
        left = sorted(s for s in english if len(s) > 4 and re.search(rf"\b{re.escape(s)}\b", text))
        assert left == [], left
