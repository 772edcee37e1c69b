"""A merge editor resolves a conflict in a real browser (headless Chromium), on two real nodes, on both stores:
signs in, takes one side in one region, edits another by hand, unticks a tag, resolves; the other node then
converges to exactly that document. Then the stale-head and leftover-marker paths, a reader without the merge
role, and the whole flow in Dutch. Screenshots of each page go to the test's temporary folder."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from babel.messages.pofile import read_po
from playwright.sync_api import Browser, Page, expect

from api.ui.i18n import CATALOGS
from infrastructure.local_cluster import NodeProcess
from tests.e2e.conftest import Spawner, link
from tests.e2e.test_conflicts_e2e import editor, ok
from tests.e2e.test_federation import pull

BASE = "# Field trip\n\nintro\n\nbody\n\noutro\n"


def split_item(a: NodeProcess, b: NodeProcess) -> dict[str, Any]:
    """An item made on a, with two tags, edited on a and on b from the same head: two conflict regions."""
    with editor(a, "ann") as ann, editor(b, "bo") as bo:
        maths, extra = (ok(ann.post("/tags", json={"name": name}), 201)["gid"] for name in ("maths", "extra"))
        item = ok(ann.post("/items", json={"title": "Field trip", "markdown": BASE, "tags": [maths, extra]}), 201)
        pull(b, a)
        head = {"If-Match": f'"{item["head"]}"'}
        ok(ann.patch(f"/items/{item['gid']}", headers=head,
                     json={"markdown": BASE.replace("intro", "intro by ann").replace("body", "body: museum")}))
        ok(bo.patch(f"/items/{item['gid']}", headers=head,
                    json={"markdown": BASE.replace("intro", "intro by bo").replace("body", "body: zoo")}))
    pull(a, b)
    pull(b, a)
    return {"gid": item["gid"], "maths": maths, "extra": extra}


def sign_in(page: Page, node: NodeProcess, name: str, role: str) -> None:
    page.goto(f"{node.base_url}/ui/conflicts")
    expect(page).to_have_url(re.compile(r"/ui/sign-in$"))
    page.locator("#token").fill(node.token(name, role=role))
    page.locator("form[action='/ui/sign-in'] button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/ui/conflicts$"))


def shot(page: Page, folder: Path, name: str) -> None:
    """A screenshot of the page, and its accessibility check (axe-core): no serious or critical violation."""
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    found = Axe().run(page).response["violations"]
    serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in found
               if v["impact"] in ("serious", "critical")]
    assert serious == [], f"{name}: {serious}"


def two_nodes_in_conflict(spawn: Spawner) -> tuple[NodeProcess, NodeProcess, dict[str, Any]]:
    a, b = spawn.many("a", "b")
    link(a, b)
    return a, b, split_item(a, b)


def item_on(node: NodeProcess, gid: str) -> dict[str, Any]:
    with editor(node, "ann") as ann:
        return ok(ann.get(f"/items/{gid}"))


@pytest.mark.slow(30)
def test_a_merge_editor_resolves_a_conflict_in_the_browser_and_the_other_node_converges(
        spawn: Spawner, browser: Browser, tmp_path: Path) -> None:
    a, b, item = two_nodes_in_conflict(spawn)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, a, "mia", "merge")
    shot(page, tmp_path, "conflicts")

    page.get_by_role("link", name="Field trip").click()
    expect(page.locator("#regions [role=group]")).to_have_count(2)
    shot(page, tmp_path, "resolve")
    page.locator("#regions [data-region='0'][data-take='a']").click()  # the first region: the first side
    expect(page.locator("#regions [role=group]")).to_have_count(1)
    text = page.locator("#markdown").input_value()
    by_hand = re.sub(r"<<<<<<< [^\n]*\n.*?\n>>>>>>> [^\n]*", "body: museum, then the zoo", text, flags=re.S)
    page.locator("#markdown").fill(by_hand)
    page.get_by_label("extra").uncheck()
    page.get_by_role("button", name="Resolve").click()

    expect(page.get_by_role("status")).to_contain_text(item["gid"])
    shot(page, tmp_path, "resolved")
    pull(b, a)
    merged = BASE.replace("intro", "intro by ann").replace("body", "body: museum, then the zoo")
    for node in (a, b):
        state = item_on(node, item["gid"])
        assert (state["markdown"], [t["gid"] for t in state["tags"]], len(state["heads"])) == (
            merged, [item["maths"]], 1), node.name


@pytest.mark.slow(30)
def test_stale_heads_leftover_markers_readers_and_forged_forms_in_the_browser(
        spawn: Spawner, browser: Browser, tmp_path: Path) -> None:
    a, b, item = two_nodes_in_conflict(spawn)
    reader = browser.new_page()
    sign_in(reader, a, "ed", "editor")
    reader.goto(f"{a.base_url}/ui/conflicts/{item['gid']}")
    expect(reader.locator("#resolve")).to_have_count(0)  # an editor without the merge role reads only
    forged = reader.request.post(f"{a.base_url}/ui/conflicts/{item['gid']}", form={"title": "x", "markdown": "x"})
    assert forged.status == 403  # the session's cookie, but no CSRF token

    page = browser.new_page()
    sign_in(page, a, "mia", "merge")
    page.goto(f"{a.base_url}/ui/conflicts/{item['gid']}")
    page.get_by_role("button", name="Resolve").click()  # the markers still in the text
    expect(page.get_by_role("alert")).to_contain_text("conflict markers")
    expect(page.locator("a[data-line]")).to_have_count(6)
    shot(page, tmp_path, "markers")

    page.locator("#markdown").fill("my own merge\n")
    with editor(b, "bo") as bo:  # meanwhile, another head arrives
        current = ok(bo.get(f"/items/{item['gid']}"))
        ok(bo.patch(f"/items/{item['gid']}", headers={"If-Match": f'"{current["head"]}"'}, json={"title": "Late"}))
    pull(a, b)
    page.get_by_role("button", name="Resolve").click()
    expect(page.get_by_role("alert")).to_contain_text("Another version arrived")
    expect(page.locator("#markdown")).to_have_value("my own merge\n")
    shot(page, tmp_path, "stale")
    assert len(item_on(a, item["gid"])["heads"]) == 2  # nothing stored


@pytest.mark.slow(20)
def test_the_conflict_flow_in_dutch_leaves_no_english_string(spawn: Spawner, browser: Browser,
                                                             tmp_path: Path) -> None:
    with open(CATALOGS / "nl" / "LC_MESSAGES" / "messages.po", "rb") as po:
        english = {m.id.split("%(")[0].strip() for m in read_po(po) if m.id and m.id != m.string}
    a, b, item = two_nodes_in_conflict(spawn)
    page = browser.new_context(locale="nl-NL").new_page()

    page.goto(f"{a.base_url}/ui/sign-in")
    shot(page, tmp_path, "sign-in-nl")
    texts = [page.locator("body").inner_text()]
    sign_in(page, a, "mia", "merge")
    texts.append(page.locator("body").inner_text())
    page.goto(f"{a.base_url}/ui/conflicts/{item['gid']}")
    texts.append(page.locator("body").inner_text())
    shot(page, tmp_path, "resolve-nl")
    page.get_by_role("button", name="Oplossen").click()
    texts.append(page.locator("body").inner_text())

    assert "Open conflicten" in texts[1] and "Gebied 1" in texts[2]
    for text in texts:
        left = sorted(s for s in english if len(s) > 4 and s in text)
        assert left == [], left
