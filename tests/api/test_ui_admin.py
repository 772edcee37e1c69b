"""The federation pages (``/ui/federation``) in-process on both stores: an admin sees the peers, what waits for
parents, what was refused and why, the keys; retry and sync buttons; anyone else gets 403 and none of the data;
a form without the session's CSRF token changes nothing; the record of refusals stays bounded."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from api.ui.session import csrf_token
from domain.federation import Breaker
from domain.transaction import utc_now
from infrastructure.node_auth import issue as node_token
from infrastructure.peers import Peer
from infrastructure.refusals import REASON_CHARS
from infrastructure.signing import Keyring
from tests.api.conftest import Api, is_problem
from tests.api.test_ui import sign_in
from tests.factory import SigningPeer

PAGES = ("/ui/federation", "/ui/federation?fragment=1", "/ui/federation/pending", "/ui/federation/refusals",
         "/ui/federation/keys")


class Sender:
    """A peer of the api's node with its own keys (pinned there), which posts to the node's inbox as a peer does:
    a node token and signed transactions, over the app's HTTP interface. Its base URL refuses connections."""

    def __init__(self, api: Api, keys: Keyring, host: str = "p.example.net") -> None:
        self.api = api
        self.keys = keys
        self.maker = SigningPeer(host=host, key=keys.active)
        self.name = self.maker.name
        api.node.keys.pin(self.name, keys.jwks())
        api.node.peers.add(Peer(name=self.name, base_url="http://127.0.0.1:9", send_types=("item", "tag"),
                                accept_types=("item", "tag")))

    def send(self, *txs: Any) -> Any:
        token = node_token(self.keys, self.name, self.api.node.name)
        return self.api.post("/federation/inbox", json={"transactions": list(txs)},
                             headers={"Authorization": f"Bearer {token}"})

    def tampered(self) -> dict[str, Any]:
        """A creation whose payload changed after it was signed."""
        tx = self.maker.create_item("Signed", "as signed\n")
        tx["payload"] = {**tx["payload"], "markdown": "changed on the way\n"}
        return tx


@pytest.fixture
def sender(api: Api, tmp_path: Path) -> Sender:
    return Sender(api, Keyring.create(tmp_path / "p-keys", "ES256"))


def open_breaker(api: Api, name: str) -> None:
    until = time.time() + 300
    api.node.peers.failed(name, utc_now(), "GET http://127.0.0.1:9: ConnectError", Breaker("open", 5, until), until)


def test_without_a_session_every_federation_page_sends_the_browser_to_sign_in(api: Api, sender: Sender) -> None:
    for path in PAGES:
        answer = api.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/sign-in", path


def test_an_admin_sees_the_peers_what_is_pending_what_was_refused_and_the_keys(api: Api, sender: Sender) -> None:
    tampered = sender.tampered()
    orphan = sender.maker.edit(sender.maker.create_item("Never sent"), markdown="an edit of it\n")
    assert sender.send(tampered).status_code == 422
    assert [o.status for o in api.node.app.receive([orphan], sender=sender.name)] == ["pending"]
    sign_in(api, "ada", role="admin")

    peers, fragment, pending, refusals, keys = (api.get(path) for path in PAGES)

    assert all(page.status_code == 200 for page in (peers, fragment, pending, refusals, keys))
    assert sender.name in peers.text and "http://127.0.0.1:9" in peers.text and 'data-refresh=' in peers.text
    assert sender.name in fragment.text and "<html" not in fragment.text
    assert f'action="/ui/federation/peers/{sender.name.replace(":", "%3A")}/sync"' in peers.text
    assert csrf_token(api.client.cookies["fedsync_session"]) in peers.text
    assert orphan["gid"] in pending.text and orphan["parents"][0] in pending.text and "item.edited" in pending.text
    assert tampered["gid"] in refusals.text and "invalid-transaction" in refusals.text
    assert api.node.keyring.active.kid in keys.text and "active" in keys.text


@pytest.mark.parametrize("role", ["editor", "merge"])
def test_an_editor_or_merge_editor_gets_403_and_none_of_the_data(api: Api, sender: Sender, role: str) -> None:
    sender.send(sender.tampered())
    open_breaker(api, sender.name)
    secret = sign_in(api, "ed", role=role)

    answers = [api.get(path) for path in PAGES]
    retried = api.post(f"/ui/federation/peers/{sender.name}/retry", data={"csrf": csrf_token(secret)},
                       follow_redirects=False)
    synced = api.post(f"/ui/federation/peers/{sender.name}/sync", data={"csrf": csrf_token(secret)},
                      follow_redirects=False)

    for answer in [*answers, retried, synced]:
        assert answer.status_code == 403 and "Your role does not allow this page." in answer.text
        assert sender.name not in answer.text and api.node.keyring.active.kid not in answer.text
    assert api.node.peers.get(sender.name).breaker.state == "open"
    assert is_problem(api.get("/admin/refusals", headers={"Authorization": f"Bearer {secret}"}), 403)


def test_a_button_without_the_session_csrf_token_changes_nothing(api: Api, sender: Sender) -> None:
    open_breaker(api, sender.name)
    secret = sign_in(api, "ada", role="admin")

    forged = api.post(f"/ui/federation/peers/{sender.name}/retry", data={"csrf": "0" * 64}, follow_redirects=False)
    elsewhere = api.post(f"/ui/federation/peers/{sender.name}/retry", data={"csrf": csrf_token(secret)},
                         headers={"Origin": "https://evil.example.org"}, follow_redirects=False)
    bare = api.post(f"/ui/federation/peers/{sender.name}/sync", follow_redirects=False)

    assert forged.status_code == elsewhere.status_code == bare.status_code == 403
    assert api.node.peers.get(sender.name).breaker.state == "open"
    assert api.node.peers.get(sender.name).last_error.endswith("ConnectError")  # no sync was tried


def test_retry_now_closes_the_breaker_and_says_so(api: Api, sender: Sender) -> None:
    open_breaker(api, sender.name)
    secret = sign_in(api, "ada", role="admin")
    assert "breaker-open" in api.get("/ui/federation").text

    answer = api.post(f"/ui/federation/peers/{sender.name}/retry", data={"csrf": csrf_token(secret)},
                      follow_redirects=False)

    assert answer.status_code == 303 and answer.headers["location"].startswith("/ui/federation?retried=")
    assert api.node.peers.get(sender.name).breaker.state == "closed"
    shown = api.get(answer.headers["location"])
    assert "breaker closed" in shown.text and 'role="status"' in shown.text and "breaker-open" not in shown.text


def test_sync_now_with_an_unreachable_peer_shows_why_not_a_500(api: Api, sender: Sender) -> None:
    secret = sign_in(api, "ada", role="admin")

    answer = api.post(f"/ui/federation/peers/{sender.name}/sync", data={"csrf": csrf_token(secret)},
                      follow_redirects=False)
    unknown, malformed = (api.post(f"/ui/federation/peers/{name}/sync", data={"csrf": csrf_token(secret)},
                                   follow_redirects=False) for name in ("urn:domain:nobody.example.net", "a%00b"))

    assert answer.status_code == 502 and 'role="alert"' in answer.text
    assert f"Sync with {sender.name} failed" in answer.text and "127.0.0.1:9" in answer.text
    assert api.node.peers.get(sender.name).last_error  # recorded as the API's sync records it
    assert unknown.status_code == malformed.status_code == 404


def test_a_notice_names_only_a_peer_of_this_node(api: Api, sender: Sender) -> None:
    sign_in(api, "ada", role="admin")

    ours = api.get("/ui/federation", params={"synced": sender.name, "stored": "3"})
    made_elsewhere = api.get("/ui/federation", params={"synced": "urn:domain:evil.example.org", "stored": "3"})

    assert f"Pulled from {sender.name}: 0 received, 3 stored" in ours.text
    assert "evil.example.org" not in made_elsewhere.text and 'role="status"' not in made_elsewhere.text


def test_refusals_are_recorded_with_their_reasons_and_stay_bounded(api: Api, sender: Sender) -> None:
    tampered = sender.tampered()
    sender.send(tampered)
    kept = api.node.refusals.kept
    hostile = [{"gid": f"g{i}", "entity": "x" * 10_000, "kind": ["not", "text"]} for i in range(kept + 20)]

    answer = sender.send(*hostile)

    assert answer.status_code == 403  # every one refused: the answer is an error, with every reason
    listing = api.get("/admin/refusals", headers=api.auth("ada", role="admin")).json()
    assert len(listing["refusals"]) == kept and listing["total"] == kept + 21 and listing["kept"] == kept
    newest = listing["refusals"][0]
    assert (newest["sender"], newest["gid"], newest["type"], newest["status"]) == (
        sender.name, f"g{kept + 19}", "forbidden", 403)
    assert "is not accepted from" in newest["reason"] and len(newest["reason"]) <= REASON_CHARS
    assert len(newest["entity"]) <= 200 and newest["kind"] == "(list)"
    assert tampered["gid"] not in {r["gid"] for r in listing["refusals"]}  # the oldest dropped first
