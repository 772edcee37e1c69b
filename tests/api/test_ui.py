"""The web pages (``/ui``) in-process on both stores: sign-in and the session cookie, CSRF, the conflict list
and resolving through the form (markers left, a head that arrived meanwhile, a reader without the merge role),
what an editor may not see, and the Dutch pages."""

from __future__ import annotations

import re
from typing import Any

import jwt
import pytest
from babel.messages.pofile import read_po

from api.ui import conflict_pages
from api.ui.i18n import CATALOGS
from api.ui.session import SESSION_COOKIE, csrf_token
from tests.api.conftest import Api, is_problem
from tests.factory import SigningPeer, document, trust

BASE = "# Plan\n\nintro\n\nbody\n\noutro\n"


class Split:
    """An item whose history split: north and south edited the same line of the same base."""

    def __init__(self, api: Api) -> None:
        self.node = api.node
        self.north, self.south = SigningPeer(host="north.example.net"), SigningPeer(host="south.example.net")
        trust(self.node, self.north, self.south)
        self.tag = self.north.create_tag("maths", scope="NETWORK", author="nia")
        self.base = self.north.tx("item", None, "item.created", [], document("Plan", BASE, [self.tag["entity_gid"]]),
                                  scope="NETWORK", author="nia")
        self.a = self.north.edit(self.base, markdown=BASE.replace("intro", "intro by north"), author="alice")
        self.b = self.south.edit(self.base, markdown=BASE.replace("intro", "intro by south"), author="bob")
        assert [o.status for o in self.node.app.receive([self.tag, self.base, self.a, self.b])] == ["stored"] * 4
        self.gid = self.base["entity_gid"]


@pytest.fixture
def split(api: Api) -> Split:
    return Split(api)


def sign_in(api: Api, name: str = "mia", role: str = "merge", **token: Any) -> str:
    """Sign the client in with a new token; the session's own token (the cookie's), a token as good."""
    secret = api.token(name, role=role, **token)
    answer = api.post("/ui/sign-in", data={"token": secret}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/conflicts", answer.text
    return api.client.cookies[SESSION_COOKIE]


def resolve(api: Api, split: Split, secret: str, markdown: str, **extra: Any) -> Any:
    form = {"csrf": csrf_token(secret), "head": [split.a["gid"], split.b["gid"]], "title": "Plan",
            "markdown": markdown, "scope": "NETWORK", **extra}
    return api.post(f"/ui/conflicts/{split.gid}", data=form, follow_redirects=False)


def test_without_a_session_every_page_sends_the_browser_to_sign_in(api: Api, split: Split) -> None:
    for path in ("/ui/conflicts", f"/ui/conflicts/{split.gid}"):
        answer = api.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/sign-in"
    assert api.get("/ui/sign-in").status_code == 200


def test_sign_in_sets_a_cookie_scripts_and_other_sites_cannot_use(api: Api) -> None:
    refused = api.post("/ui/sign-in", data={"token": "not-a-token"}, follow_redirects=False)
    assert refused.status_code == 401 and SESSION_COOKIE not in refused.headers.get("set-cookie", "")

    answer = api.post("/ui/sign-in", data={"token": api.token("mia", role="merge")}, follow_redirects=False)

    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Path=/ui" in cookie
    assert "Content-Security-Policy" in api.get("/ui/conflicts").headers


def test_the_cookie_holds_a_session_token_that_signing_out_revokes_and_the_pasted_token_lives_on(api: Api) -> None:
    pasted = api.token("mia", role="merge", team="maths")
    api.post("/ui/sign-in", data={"token": pasted}, follow_redirects=False)
    session_token = api.client.cookies[SESSION_COOKIE]
    assert session_token != pasted
    record = api.node.tokens.find(jwt.decode(session_token, options={"verify_signature": False})["jti"])
    assert record is not None and (record.subject, record.role, record.team, record.label) == (
        "mia", "merge", "maths", "web session")
    assert record.expires_at - record.issued_at <= 8 * 3600
    assert api.get("/ui/conflicts", follow_redirects=False).status_code == 200

    signed_out = api.post("/ui/sign-out", data={"csrf": csrf_token(session_token)}, follow_redirects=False)

    assert signed_out.status_code == 303 and SESSION_COOKIE not in api.client.cookies
    api.client.cookies.set(SESSION_COOKIE, session_token, path="/ui")  # a copy of the cookie, kept
    assert api.get("/ui/conflicts", follow_redirects=False).headers["location"] == "/ui/sign-in"
    assert is_problem(api.get("/items", headers={"Authorization": f"Bearer {session_token}"}), 401)
    assert api.get("/items", headers={"Authorization": f"Bearer {pasted}"}).status_code == 200


def test_revoking_the_pasted_token_ends_the_sessions_it_opened_and_no_other(api: Api) -> None:
    pasted, other = api.token("mia", role="merge"), api.token("mia", role="merge")
    sessions = []
    for secret in (pasted, pasted, other):
        api.client.cookies.clear()
        api.post("/ui/sign-in", data={"token": secret}, follow_redirects=False)
        sessions.append(api.client.cookies[SESSION_COOKIE])
    api.client.cookies.clear()  # a session opened by pasting a session's own token: it follows that one
    api.post("/ui/sign-in", data={"token": sessions[0]}, follow_redirects=False)
    sessions.append(api.client.cookies[SESSION_COOKIE])
    bearer = [{"Authorization": f"Bearer {token}"} for token in sessions]
    assert [api.get("/items", headers=h).status_code for h in bearer] == [200] * 4
    jti = jwt.decode(pasted, options={"verify_signature": False})["jti"]

    revoked = api.delete(f"/admin/tokens/{jti}", headers=api.auth("root", role="admin"))

    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert [api.get("/items", headers=h).status_code for h in bearer] == [401, 401, 200, 401]
    api.client.cookies.set(SESSION_COOKIE, sessions[1], path="/ui")
    assert api.get("/ui/conflicts", follow_redirects=False).headers["location"] == "/ui/sign-in"
    assert api.get("/items", headers={"Authorization": f"Bearer {other}"}).status_code == 200
    records = {r["jti"]: r for r in api.get("/admin/tokens?all=true", headers=api.auth("root", role="admin"))
               .json()["tokens"]}
    ended = [records[jwt.decode(t, options={"verify_signature": False})["jti"]] for t in sessions]
    assert [(r["status"], r["revoked_by"]) for r in ended] == [("revoked", "root@urn:domain:a.example.org")] * 2 \
        + [("live", None), ("revoked", "root@urn:domain:a.example.org")]


def test_a_merge_editor_resolves_through_the_form_and_the_item_has_one_head(api: Api, split: Split) -> None:
    secret = sign_in(api)
    listing = api.get("/ui/conflicts")
    assert listing.status_code == 200 and f'href="/ui/conflicts/{split.gid}"' in listing.text
    review = api.get(f"/ui/conflicts/{split.gid}")
    assert review.status_code == 200 and "&lt;&lt;&lt;&lt;&lt;&lt;&lt; " in review.text  # escaped markers
    assert 'class="changed"' in review.text and "intro by south" in review.text
    assert f'name="tag" value="{split.tag["entity_gid"]}" checked> maths' in review.text

    merged = BASE.replace("intro", "intro by north and south")
    answer = resolve(api, split, secret, merged)

    assert answer.status_code == 303 and answer.headers["location"] == f"/ui/conflicts?resolved={split.gid}"
    item = api.get(f"/items/{split.gid}", headers={"Authorization": f"Bearer {secret}"}).json()
    assert item["markdown"] == merged and len(item["heads"]) == 1
    assert f'href="/ui/conflicts/{split.gid}"' not in api.get("/ui/conflicts").text


def test_a_form_without_the_session_csrf_token_or_from_another_site_is_refused(api: Api, split: Split) -> None:
    secret = sign_in(api)
    before = api.outbox()

    forged = resolve(api, split, secret, BASE, csrf="0" * 64)
    elsewhere = api.post(f"/ui/conflicts/{split.gid}", headers={"Origin": "https://evil.example.org"},
                         data={"csrf": csrf_token(secret), "head": [split.a["gid"], split.b["gid"]],
                               "title": "Plan", "markdown": BASE}, follow_redirects=False)
    sign_out = api.post("/ui/sign-out", data={}, follow_redirects=False)

    signed_in_elsewhere = api.post("/ui/sign-in", headers={"Origin": "https://evil.example.org"},
                                   data={"token": api.token("eve", role="merge")}, follow_redirects=False)

    assert forged.status_code == elsewhere.status_code == sign_out.status_code == 403
    assert signed_in_elsewhere.status_code == 403 and "set-cookie" not in signed_in_elsewhere.headers
    assert api.outbox() == before


def test_leftover_markers_point_at_their_lines_and_keep_the_text(api: Api, split: Split) -> None:
    secret = sign_in(api)
    proposal = api.get(f"/conflicts/{split.gid}", headers={"Authorization": f"Bearer {secret}"}).json()
    text = proposal["proposal"]["document"]["markdown"]

    answer = resolve(api, split, secret, text)

    assert answer.status_code == 422
    lines = [n for n, line in enumerate(text.splitlines(), 1) if line.startswith(("<<<<<<<", "=======", ">>>>>>>"))]
    assert re.findall(r'data-line="(\d+)"', answer.text) == [str(n) for n in lines]
    assert "intro by north" in answer.text and 'name="accept_markers"' in answer.text


def test_a_head_that_arrived_meanwhile_is_shown_and_the_draft_kept(api: Api, split: Split) -> None:
    secret = sign_in(api)
    late = split.south.edit(split.b, markdown=BASE.replace("outro", "outro, later"), author="bob")
    api.node.app.receive([late])

    answer = resolve(api, split, secret, "my careful merge\n")

    assert answer.status_code == 409 and "my careful merge" in answer.text
    assert f'name="head" value="{late["gid"]}"' in answer.text  # the current heads, to resolve again


def test_an_editor_without_the_merge_role_reads_but_cannot_resolve(api: Api, split: Split) -> None:
    secret = sign_in(api, "ed", role="editor")
    review = api.get(f"/ui/conflicts/{split.gid}")
    assert review.status_code == 200 and 'id="resolve"' not in review.text
    before = api.outbox()

    answer = resolve(api, split, secret, BASE)

    assert answer.status_code == 403 and api.outbox() == before


def test_an_owner_item_of_another_editor_is_in_no_page(api: Api, split: Split) -> None:
    ann = api.auth("ann")
    private = api.create(ann, title="Ann's private notes", scope="OWNER")
    sign_in(api, "mia")

    pages = [api.get("/ui/conflicts").text, api.get(f"/ui/conflicts/{private['gid']}").text]

    assert all("private notes" not in page for page in pages)
    hidden = api.get(f"/ui/conflicts/{private['gid']}")
    assert hidden.status_code == 404 and hidden.headers["content-type"].startswith("text/html")
    assert "no such item, or you may not see it" in hidden.text  # the same answer as for no item at all
    unknown = "00000000-0000-4000-8000-000000000000"
    assert api.get(f"/ui/conflicts/{unknown}").text == hidden.text.replace(private["gid"], unknown)


def test_the_pages_in_dutch_hold_no_english_string(api: Api, split: Split) -> None:
    with open(CATALOGS / "nl" / "LC_MESSAGES" / "messages.po", "rb") as po:
        english = [m.id for m in read_po(po) if m.id and m.id != m.string and len(m.id) > 4]
    dutch = {"Accept-Language": "nl-NL,nl;q=0.9,en;q=0.5"}
    pages = [api.get("/ui/sign-in", headers=dutch).text]
    secret = sign_in(api)
    pages += [api.get("/ui/conflicts", headers=dutch).text, api.get(f"/ui/conflicts/{split.gid}", headers=dutch).text]
    pages.append(resolve(api, split, secret, BASE + "<<<<<<< x\n=======\n>>>>>>> y\n").text)  # default: English
    assert 'lang="nl"' in pages[1] and "Open conflicten" in pages[1] and "Oplossen" in pages[2]
    for page in pages[:3]:
        text = re.sub(r"<[^>]+>", " ", page)
        left = [s for s in english if s.split("%(")[0].strip() and s.split("%(")[0].strip() in text]
        assert left == [], left
    switched = api.get("/ui/language/nl?back=/ui/conflicts", follow_redirects=False)
    assert switched.status_code == 303 and "fedsync_lang=nl" in switched.headers["set-cookie"]


def test_a_form_the_api_would_refuse_is_refused_and_stores_nothing(api: Api, split: Split) -> None:
    secret = sign_in(api)
    before = api.outbox()

    answer = resolve(api, split, secret, BASE, tag=["<not a gid>"])

    assert answer.status_code == 422 and "document.tags" in answer.text and api.outbox() == before


def test_the_conflict_list_pages(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conflict_pages, "PAGE", 2)
    splits = [Split(api) for _ in range(3)]
    sign_in(api)

    first = api.get("/ui/conflicts")
    following = re.search(r'href="(/ui/conflicts\?cursor=[^"]+)" rel="next"', first.text)
    assert following and first.text.count('href="/ui/conflicts/') == 2
    second = api.get(following.group(1).replace("&amp;", "&"))
    assert second.text.count('href="/ui/conflicts/') == 1 and 'rel="next"' not in second.text
    assert all(f'href="/ui/conflicts/{s.gid}"' in first.text + second.text for s in splits)
    bad = api.get("/ui/conflicts", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400 and "not a cursor" in bad.text
