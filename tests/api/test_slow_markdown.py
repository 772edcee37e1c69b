"""Markdown built to be slow, through the API and the pages on both stores: shown as written within the render
budget (domain/references.py), its references linked, instead of holding the serving process for seconds.

Before the budget, each of these requests took 11 s or more (a megabyte of ``[``), the interpreter lock held."""

from __future__ import annotations

import time

from domain.render_budget import RENDER_BUDGET
from tests.api.conftest import Api
from tests.api.test_ui import sign_in
from tests.api.test_ui_items import post

NOTE = '<p class="render-note">'
SLOW = "[" * 999_000  # 10.9 s to render before


def test_an_item_too_slow_to_render_is_shown_as_written_by_the_api_and_the_pages(api: Api) -> None:
    secret = sign_in(api, "ann", role="editor")
    ann = {"Authorization": f"Bearer {secret}"}
    target = api.create(ann, title="Target")
    gid = api.create(ann, title="Brackets", markdown=f"see {{item:{target['gid']}}} <b>\n" + SLOW)["gid"]

    started = time.perf_counter()
    rendered = api.get(f"/items/{gid}/rendered", headers=ann)
    took = time.perf_counter() - started

    assert rendered.status_code == 200 and took < RENDER_BUDGET * 5, f"{took:.1f} s"
    html = rendered.json()["html"]
    assert html.startswith(NOTE) and "see <a class=\"item-ref\"" in html and "&lt;b&gt;" in html
    assert rendered.json()["references"] == [{"gid": target["gid"], "kind": "item", "status": "local",
                                                 "href": f"/items/{target['gid']}"}]
    page = api.get(f"/ui/items/{gid}")  # the same text: from the cache
    assert page.status_code == 200 and NOTE in page.text and f'href="/ui/items/{target["gid"]}"' in page.text


def test_a_preview_too_slow_to_render_is_shown_as_written(api: Api) -> None:
    secret = sign_in(api, "ann", role="editor")

    started = time.perf_counter()
    preview = post(api, secret, "/ui/preview", markdown="_a" * 480_000)  # 6.2 s to render before
    took = time.perf_counter() - started

    assert preview.status_code == 200 and took < RENDER_BUDGET * 5, f"{took:.1f} s"
    assert NOTE in preview.text and "<em>" not in preview.text
