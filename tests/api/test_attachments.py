"""Attachments through the API on both stores: upload (multipart), list, metadata, bytes (whole, ranges, the
right headers), replace, delete; references to attachments rendered and counted as backlinks; only the item's
owner attaches, and an attachment is exactly as visible as its item; what a hostile upload gets."""

from __future__ import annotations

import hashlib
from typing import Any

from tests.api.conftest import Api, is_problem
from tests.factory import SigningPeer

PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489") + b"\x00" * 64


def upload(api: Api, headers: dict[str, str], item: str, data: bytes = PNG, name: str = "plaatje.png",
           media_type: str = "image/png", status: int = 201) -> dict[str, Any]:
    answer = api.post(f"/items/{item}/attachments", files={"file": (name, data, media_type)}, headers=headers)
    assert answer.status_code == status, answer.text
    return answer.json()


def test_an_attachment_is_uploaded_listed_read_in_ranges_replaced_and_deleted(api: Api) -> None:
    ann = api.auth("ann")
    item = api.create(ann, title="Les")
    before = api.outbox()

    added = upload(api, ann, item["gid"])

    assert (added["name"], added["media_type"], added["size"]) == ("plaatje.png", "image/png", len(PNG))
    assert added["sha256"] == hashlib.sha256(PNG).hexdigest() and api.outbox() == before + 1
    listed = api.get(f"/items/{item['gid']}/attachments", headers=ann).json()["attachments"]
    assert [a["gid"] for a in listed] == [added["gid"]]
    whole = api.get(added["content"], headers=ann)
    assert whole.status_code == 200 and whole.content == PNG and whole.headers["content-type"] == "image/png"
    assert whole.headers["etag"] == f'"{added["sha256"]}"' and whole.headers["x-content-type-options"] == "nosniff"
    assert whole.headers["content-disposition"] == "inline; filename*=UTF-8''plaatje.png"
    part = api.get(added["content"], headers={**ann, "Range": "bytes=1-3"})
    assert part.status_code == 206 and part.content == PNG[1:4]
    assert part.headers["content-range"] == f"bytes 1-3/{len(PNG)}"
    assert api.get(added["content"], headers={**ann, "Range": "bytes=-2"}).content == PNG[-2:]
    assert is_problem(api.get(added["content"], headers={**ann, "Range": f"bytes={len(PNG)}-"}), 416)

    text = b"plain notes\n"
    replaced = api.put(added["content"], files={"file": ("notes.txt", text, "text/plain")}, headers=ann)
    assert replaced.status_code == 200 and replaced.json()["name"] == "notes.txt"
    assert api.get(added["content"], headers=ann).content == text
    assert api.delete(f"/attachments/{added['gid']}", headers=ann).status_code == 204
    assert api.get(f"/items/{item['gid']}/attachments", headers=ann).json()["attachments"] == []
    assert is_problem(api.get(added["content"], headers=ann), 404)


def test_a_declared_html_or_svg_is_never_served_as_such(api: Api) -> None:
    ann = api.auth("ann")
    item = api.create(ann)
    for name, data, declared in (("x.html", b"<script>alert(1)</script>", "text/html"),
                                 ("x.svg", b"<svg onload='alert(1)'/>", "image/svg+xml")):
        added = upload(api, ann, item["gid"], data, name, declared)
        answer = api.get(added["content"], headers=ann)
        assert answer.headers["content-type"] == "application/octet-stream"
        assert answer.headers["content-disposition"].startswith("attachment;")
        assert "sandbox" in answer.headers["content-security-policy"]


def test_references_to_attachments_render_and_count_as_backlinks(api: Api) -> None:
    ann = api.auth("ann")
    holder = api.create(ann, title="Holder")
    added = upload(api, ann, holder["gid"])
    missing = "00000000-0000-4000-8000-000000000000"
    item = api.create(ann, markdown=f"![plaatje]({{attachment:{added['gid']}}}) {{attachment:{added['gid']}}} "
                                    f"![weg]({{attachment:{missing}:https://other.example.org/p.png}})\n")

    rendered = api.get(f"/items/{item['gid']}/rendered", headers=ann).json()

    content = f"/attachments/{added['gid']}/content"
    assert f'<img class="item-ref" data-item="attachment:{added["gid"]}" src="{content}" alt="plaatje"' in \
        rendered["html"]
    assert f'href="{content}" data-item="attachment:{added["gid"]}">plaatje.png</a>' in rendered["html"]
    assert [(r["kind"], r["gid"], r["status"]) for r in rendered["references"]] == [
        ("attachment", added["gid"], "local"), ("attachment", added["gid"], "local"),
        ("attachment", missing, "fallback")]
    backlinks = api.get(f"/items/{holder['gid']}/backlinks", headers=ann).json()["items"]
    assert [b["gid"] for b in backlinks] == [item["gid"]]


def test_only_the_owner_attaches_and_an_attachment_is_as_visible_as_its_item(api: Api, peer: SigningPeer) -> None:
    ann, bo = api.auth("ann"), api.auth("bo")
    private = api.create(ann, title="Private", scope="OWNER")
    secret = upload(api, ann, private["gid"])
    theirs = peer.create_item("theirs", "x\n")
    assert api.node.app.receive_one(theirs).status == "stored"
    before = api.outbox()

    assert is_problem(api.get(f"/attachments/{secret['gid']}", headers=bo), 404)
    assert is_problem(api.get(secret["content"], headers=bo), 404)
    assert is_problem(api.get(f"/items/{private['gid']}/attachments", headers=bo), 404)
    foreign = api.post(f"/items/{theirs['entity_gid']}/attachments", files={"file": ("a.png", PNG, "image/png")},
                       headers=ann)
    assert is_problem(foreign, 403) and "only its owner adds attachments" in foreign.json()["detail"]
    assert is_problem(api.post(f"/items/{private['gid']}/attachments", files={"file": ("a", b"x", "x/y")},
                               headers={"Authorization": "Bearer not-a-token"}), 401)
    assert api.outbox() == before
