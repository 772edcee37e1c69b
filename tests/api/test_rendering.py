"""The rendered view: cross-references resolved three ways, everything escaped; backlinks."""

from __future__ import annotations

import uuid

from tests.api.conftest import Api, is_problem


def test_references_link_local_copy_else_fallback_else_unresolved(api: Api) -> None:
    ann = api.auth("ann")
    local = api.create(ann, title="Local <b>copy</b>")
    remote, missing = str(uuid.uuid4()), str(uuid.uuid4())
    markdown = (f"- {{item:{local['gid']}}}\n"
                f"- {{item:{remote}:https://other.example.org/items/1?a=1&b=2}}\n"
                f"- {{item:{missing}}}\n")
    item = api.create(ann, markdown=markdown)

    rendered = api.get(f"/items/{item['gid']}/rendered", headers=ann).json()

    assert [(r["gid"], r["status"]) for r in rendered["references"]] == [
        (local["gid"], "local"), (remote, "fallback"), (missing, "unresolved")]
    html = rendered["html"]
    link = f'<a class="item-ref" href="/items/{local["gid"]}" data-item="{local["gid"]}">'
    assert link + "Local &lt;b&gt;copy&lt;/b&gt;</a>" in html
    assert 'href="https://other.example.org/items/1?a=1&amp;b=2"' in html
    assert f'<span class="item-ref item-ref-unresolved" data-item="{missing}">{{item:{missing}}}</span>' in html
    assert "<b>" not in html


def test_local_copy_wins_over_the_fallback_url(api: Api) -> None:
    ann = api.auth("ann")
    local = api.create(ann, title="Here")
    item = api.create(ann, markdown=f"{{item:{local['gid']}:https://elsewhere.example.org/x}}")

    rendered = api.get(f"/items/{item['gid']}/rendered", headers=ann).json()

    assert rendered["references"] == [{"gid": local["gid"], "kind": "item", "status": "local",
                                       "href": f"/items/{local['gid']}"}]
    assert "elsewhere" not in rendered["html"]


def test_script_in_markdown_is_stored_but_rendered_escaped(api: Api) -> None:
    ann = api.auth("ann")
    markdown = '<script>alert("x")</script>\n\n[click](javascript:alert(1)) <img src=x onerror=alert(1)>\n'

    item = api.create(ann, title="<script>t</script>", markdown=markdown)
    rendered = api.get(f"/items/{item['gid']}/rendered", headers=ann).json()

    assert api.get(f"/items/{item['gid']}", headers=ann).json()["markdown"] == markdown
    assert "<script>" not in rendered["html"] and "&lt;script&gt;" in rendered["html"]
    assert "<img" not in rendered["html"] and 'href="javascript:' not in rendered["html"]
    assert rendered["title"] == "<script>t</script>"  # JSON text; HTML only ever gets it escaped


def test_javascript_fallback_is_refused_and_changes_nothing(api: Api) -> None:
    ann = api.auth("ann")
    item = api.create(ann)
    before = api.outbox()
    markdown = f"{{item:{uuid.uuid4()}:javascript:alert(1)}}"

    created = api.post("/items", json={"title": "x", "markdown": markdown}, headers=ann)
    edited = api.patch(f"/items/{item['gid']}", json={"parent": item["head"], "markdown": markdown}, headers=ann)

    assert is_problem(created, 422) and is_problem(edited, 422)
    assert created.json()["type"].endswith("invalid-reference")
    assert api.outbox() == before


def test_received_javascript_fallback_renders_as_unresolved_text(api: Api) -> None:
    ann = api.auth("ann")
    item = api.create(ann)
    target = str(uuid.uuid4())
    # a change that bypasses the API check (as a peer's transaction would)
    api.node.app.edit_item(item["gid"], parent=item["head"], author=f"bob@{api.node.name}",
                           markdown=f"{{item:{target}:javascript:alert(1)}}")

    rendered = api.get(f"/items/{item['gid']}/rendered", headers=ann).json()

    assert rendered["references"] == [{"gid": target, "kind": "item", "status": "unresolved", "href": None}]
    assert "javascript" not in rendered["html"]


def test_backlinks_follow_the_current_markdown(api: Api) -> None:
    ann = api.auth("ann")
    target = api.create(ann, title="Target")
    one = api.create(ann, title="One", markdown=f"see {{item:{target['gid']}}}")
    two = api.create(ann, title="Two", markdown=f"also {{item:{target['gid']}:https://x.example.org/}}")

    before = api.get(f"/items/{target['gid']}/backlinks", headers=ann).json()["items"]
    api.edit(ann, one, markdown="no longer")
    after = api.get(f"/items/{target['gid']}/backlinks", headers=ann).json()["items"]

    assert sorted(i["gid"] for i in before) == sorted([one["gid"], two["gid"]])
    assert [i["gid"] for i in after] == [two["gid"]]


def test_backlinks_survive_a_projection_rebuild(api: Api) -> None:
    ann = api.auth("ann")
    target = api.create(ann, title="Target")
    source = api.create(ann, markdown=f"{{item:{target['gid']}}}")
    api.post(f"/items/{target['gid']}/forks", json={}, headers=ann)
    backlinks = api.get(f"/items/{target['gid']}/backlinks", headers=ann).json()
    lineage = api.get(f"/items/{target['gid']}/lineage", headers=ann).json()

    api.node.projector.rebuild()

    assert api.get(f"/items/{target['gid']}/backlinks", headers=ann).json() == backlinks
    assert api.get(f"/items/{target['gid']}/lineage", headers=ann).json() == lineage
    assert [i["gid"] for i in backlinks["items"]] == [source["gid"]]


def test_a_reference_resolves_where_a_url_may_stand_and_every_form_is_a_backlink(api: Api) -> None:
    """The Federatie note's own example, ``[Zie ook deze praktijk]({item:gid})``, and the other places a URL
    stands: an image source (with a fallback), a reference definition, an autolink."""
    ann = api.auth("ann")
    practice = api.create(ann, title="Praktijk")
    remote, missing = str(uuid.uuid4()), str(uuid.uuid4())
    markdown = (f"[Zie ook deze praktijk]({{item:{practice['gid']}}})\n\n"
                f"![plaatje]({{item:{remote}:https://other.example.org/p.png}})\n\n"
                f"[meer][def] and <{{item:{practice['gid']}}}> and [weg]({{item:{missing}}})\n\n"
                f"[def]: {{item:{practice['gid']}}}\n")
    item = api.create(ann, markdown=markdown)

    rendered = api.get(f"/items/{item['gid']}/rendered", headers=ann).json()
    html = rendered["html"]

    href = f'href="/items/{practice["gid"]}"'
    assert f'data-item="{practice["gid"]}" {href}>Zie ook deze praktijk</a>' in html
    assert f'<img class="item-ref item-ref-remote" data-item="{remote}" src="https://other.example.org/p.png"' in html
    assert f"{href}>meer</a>" in html and f"{href} data-item=\"{practice['gid']}\">Praktijk</a>" in html
    assert "&lt;" not in html and "%7B" not in html  # no brackets left, no encoded reference as a URL
    assert f'<a class="item-ref item-ref-unresolved" data-item="{missing}">weg</a>' in html  # not followed
    assert [r["status"] for r in rendered["references"]] == ["local", "fallback", "local", "local", "unresolved"]
    backlinks = api.get(f"/items/{practice['gid']}/backlinks", headers=ann).json()
    assert [b["gid"] for b in backlinks["items"]] == [item["gid"]]
