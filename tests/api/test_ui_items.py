"""The item pages (``/ui/items``) in-process on both stores: create, read (rendered text with references as
links, backlinks, forks, history drawn as a DAG, a version diffed against its parent), edit with the
stale-head warning, fork, delete, the preview; forms the API would refuse, forged forms, and what an editor
may not see."""

from __future__ import annotations

import re
from typing import Any

from api.ui.session import csrf_token
from tests.api.conftest import Api
from tests.api.test_ui import sign_in


def post(api: Api, secret: str, path: str, **fields: Any) -> Any:
    return api.post(path, data={"csrf": csrf_token(secret), **fields}, follow_redirects=False)


def created(answer: Any) -> str:
    assert answer.status_code == 303, answer.text
    match = re.fullmatch(r"/ui/items/([0-9a-f-]{36})\?saved=1", answer.headers["location"])
    assert match, answer.headers["location"]
    return match.group(1)


def test_an_editor_creates_reads_edits_and_diffs_an_item_through_the_pages(api: Api) -> None:
    secret = sign_in(api, "ann", role="editor")
    ann = {"Authorization": f"Bearer {secret}"}
    tag = api.post("/tags", json={"name": "maths"}, headers=ann).json()["gid"]
    target = api.create(ann, title="Target practice")

    gid = created(post(api, secret, "/ui/items/new", title="Plan", markdown=f"# Plan\n\nsee {{item:{target['gid']}}}\n",
                       tag=[tag], scope="NETWORK"))
    page = api.get(f"/ui/items/{gid}").text
    assert f'<a class="item-ref" href="/ui/items/{target["gid"]}"' in page  # a reference is a link to its page
    assert ">maths</a>" in page and "<svg" in page and page.count("<circle") == 1
    assert f'href="/ui/items/{gid}"' in api.get(f"/ui/items/{target['gid']}").text  # the backlink

    head = api.get(f"/items/{gid}", headers=ann).json()["head"]
    edited = post(api, secret, f"/ui/items/{gid}/edit", parent=head, title="Plan", scope="NETWORK",
                  markdown=f"# Plan\n\nsee {{item:{target['gid']}}}\n\nmore\n")
    assert edited.status_code == 303
    item = api.get(f"/items/{gid}", headers=ann).json()
    assert item["markdown"].endswith("more\n") and item["tags"] == []  # the unticked tag is gone
    assert api.get(f"/ui/items/{gid}").text.count("<circle") == 2

    version = api.get(f"/ui/items/{gid}/versions/{item['head']}")
    assert version.status_code == 200 and "<ins>+more\n</ins>" in version.text and "maths" in version.text

    listing = api.get("/ui/items", params={"q": "more"}).text  # a word of the body: found, and marked
    assert f'href="/ui/items/{gid}"' in listing and "Target practice" not in listing
    assert "<mark>more</mark>" in listing
    assert "Target practice" in api.get("/ui/items").text


def test_an_edit_based_on_an_old_head_shows_what_changed_and_keeps_the_text(api: Api) -> None:
    secret = sign_in(api, "ann", role="editor")
    ann = {"Authorization": f"Bearer {secret}"}
    item = api.create(ann, title="Plan", markdown="one\n")
    api.edit(ann, item, markdown="one\ntwo by bo\n")
    before = api.outbox()

    answer = post(api, secret, f"/ui/items/{item['gid']}/edit", parent=item["head"], title="Plan",
                  scope="NETWORK", markdown="one\nmy line\n")

    assert answer.status_code == 409 and api.outbox() == before
    assert "my line" in answer.text and "<ins>+two by bo\n</ins>" in answer.text
    current = api.get(f"/items/{item['gid']}", headers=ann).json()["head"]
    assert f'name="parent" value="{current}"' in answer.text  # saving again is on top of theirs
    again = post(api, secret, f"/ui/items/{item['gid']}/edit", parent=current, title="Plan", scope="NETWORK",
                 markdown="one\nmy line\n")
    assert again.status_code == 303
    assert api.get(f"/items/{item['gid']}", headers=ann).json()["markdown"] == "one\nmy line\n"


def test_fork_delete_and_preview(api: Api) -> None:
    secret = sign_in(api, "ann", role="editor")
    ann = {"Authorization": f"Bearer {secret}"}
    item = api.create(ann, title="Plan", markdown="one\n")

    fork = created(post(api, secret, f"/ui/items/{item['gid']}/fork", title="My plan", markdown="one\nmine\n",
                        scope="NETWORK"))
    assert api.get(f"/items/{fork}", headers=ann).json()["forked_from"] == [item["gid"]]
    assert f'href="/ui/items/{fork}"' in api.get(f"/ui/items/{item['gid']}").text  # the lineage

    stale = post(api, secret, f"/ui/items/{item['gid']}/delete", parent=fork)  # not a head of the item
    assert stale.status_code in (404, 409)
    deleted = post(api, secret, f"/ui/items/{item['gid']}/delete", parent=item["head"])
    assert deleted.status_code == 303 and deleted.headers["location"] == f"/ui/items?deleted={item['gid']}"
    assert api.get(f"/items/{item['gid']}", headers=ann).status_code == 404
    tombstone = api.get(f"/items/{item['gid']}", params={"include_deleted": True}, headers=ann).json()["head"]
    assert f'action="/ui/items/{item["gid"]}/restore"' in api.get(f"/ui/items/{item['gid']}").text
    restored = post(api, secret, f"/ui/items/{item['gid']}/restore", parent=tombstone)
    assert restored.status_code == 303 and api.get(f"/items/{item['gid']}", headers=ann).json()["markdown"] == "one\n"

    preview = post(api, secret, "/ui/preview", markdown=f"**bold** {{item:{fork}}}")
    assert preview.status_code == 200 and "<strong>bold</strong>" in preview.text
    assert f'href="/ui/items/{fork}"' in preview.text


def test_forms_the_api_would_refuse_and_forged_forms_store_nothing(api: Api) -> None:
    secret = sign_in(api, "ann", role="editor")
    ann = {"Authorization": f"Bearer {secret}"}
    item = api.create(ann, title="Plan", markdown="one\n")
    before = api.outbox()

    too_long = post(api, secret, "/ui/items/new", title="x" * 1200, markdown="text", scope="NETWORK")
    bad_tag = post(api, secret, "/ui/items/new", title="Plan", markdown="text", tag=["<no gid>"], scope="NETWORK")
    forged = api.post(f"/ui/items/{item['gid']}/edit", data={"csrf": "0" * 64, "parent": item["head"],
                                                            "title": "Forged", "markdown": "x"})
    elsewhere = api.post("/ui/items/new", headers={"Origin": "https://evil.example.org"},
                         data={"csrf": csrf_token(secret), "title": "Forged", "markdown": "x"})

    assert too_long.status_code == bad_tag.status_code == 422
    assert "x" * 1200 in too_long.text and "tags" in bad_tag.text  # the draft is kept, the field named
    assert forged.status_code == elsewhere.status_code == 403
    assert api.outbox() == before


def test_an_owner_item_of_another_editor_is_in_no_item_page(api: Api) -> None:
    ann = api.auth("ann")
    private = api.create(ann, title="Ann's private notes", markdown="secret\n", scope="OWNER")
    public = api.create(ann, title="Public", markdown=f"see {{item:{private['gid']}}}\n")
    fork = api.post(f"/items/{private['gid']}/forks", json={"title": "Public fork", "scope": "NETWORK"},
                    headers=ann).json()
    secret = sign_in(api, "bo", role="editor")

    pages = [api.get(path) for path in (
        "/ui/items", f"/ui/items/{public['gid']}", f"/ui/items/{fork['gid']}",
        f"/ui/items/{fork['gid']}/versions/{fork['head']}", f"/ui/items/{private['gid']}",
        f"/ui/items/{private['gid']}/edit", f"/ui/items/{private['gid']}/fork",
        f"/ui/items/{private['gid']}/delete", f"/ui/items/{private['gid']}/versions/{private['head']}")]
    pages.append(post(api, secret, "/ui/preview", markdown=f"{{item:{private['gid']}}}"))

    assert [p.status_code for p in pages] == [200] * 4 + [404] * 5 + [200]
    for answer in pages:
        assert "private notes" not in answer.text and f'href="/ui/items/{private["gid"]}"' not in answer.text


def test_a_file_is_attached_on_the_item_page_and_served_under_ui_and_a_large_form_fits(api: Api) -> None:
    secret = sign_in(api, "ann", role="editor")
    ann = {"Authorization": f"Bearer {secret}"}
    item = api.create(ann, title="Les")

    answer = api.post(f"/ui/items/{item['gid']}/attachments", data={"csrf": csrf_token(secret)},
                      files={"file": ("notes.txt", b"plain notes\n", "text/plain")}, follow_redirects=False)
    forged = api.post(f"/ui/items/{item['gid']}/attachments", data={"csrf": "0" * 64},
                      files={"file": ("x.txt", b"x", "text/plain")}, follow_redirects=False)

    assert answer.status_code == 303 and forged.status_code == 403
    attached = api.get(f"/items/{item['gid']}/attachments", headers=ann).json()["attachments"]
    assert [a["name"] for a in attached] == ["notes.txt"]
    page = api.get(f"/ui/items/{item['gid']}").text
    assert f'href="/ui/attachments/{attached[0]["gid"]}/content">notes.txt</a>' in page
    assert api.get(f"/ui/attachments/{attached[0]['gid']}/content").content == b"plain notes\n"
    big = "a line of a long lesson plan\n" * 8000  # about 230 KB: more than an anonymous body, a page's form fits
    assert created(post(api, secret, "/ui/items/new", title="Long", markdown=big, scope="NETWORK"))
