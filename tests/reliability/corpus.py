"""The bad-input corpus: one request (or a short sequence) per class of bad input.

Each class builds its request(s) against a running node (``Target``): the
editor API with editor tokens, the federation API with node tokens of a
peer (``Target.peer``, a keyring of this process that the node has pinned;
it accepts only items and shares from it). Every request of a class must
get a 4xx problem document and leave the node's store as it was.

Classes are grouped by where they hit: ``EDITOR`` (items, tags, shares,
peers of the editor API) and ``FEDERATION`` (inbox, fetch, outbox,
subscriptions, keys).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization

from domain.transaction import checksum, signing_input
from infrastructure import tokens
from infrastructure.node_auth import issue as node_token
from infrastructure.signing import Keyring, SigningKey
from tests.factory import SigningPeer, document


@dataclass
class Target:
    """A running node and what the corpus needs to attack it."""

    http: httpx.Client
    name: str  # the node's urn:domain name
    keyring: Keyring  # the node's own keys (to forge editor tokens with)
    issue: Callable[..., str]  # issues and records an editor token, as `fedsync token create` does
    peer: Keyring  # a peer's keys, pinned on the node
    peer_name: str
    stranger: Keyring  # keys of a node that is no peer
    query: Callable[[str], list[dict[str, Any]]]  # reads the node's store (for digests)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> item as the API shows it
    peer_txs: dict[str, dict[str, Any]] = field(default_factory=dict)  # the peer's transactions the node holds
    node_txs: dict[str, dict[str, Any]] = field(default_factory=dict)  # the node's own transactions

    # --- credentials --------------------------------------------------------
    def editor(self, name: str = "ann", role: str = "editor", **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.issue(name, role=role, **kwargs)}"}

    def node_token(self, *, keyring: Keyring | None = None, issuer: str | None = None,
                   audience: str | None = None, **kwargs: Any) -> str:
        return node_token(keyring or self.peer, issuer or self.peer_name, audience or self.name, **kwargs)

    def as_peer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.node_token()}"}

    # --- transactions of the peer ---------------------------------------------
    @property
    def maker(self) -> SigningPeer:
        return SigningPeer(host=self.peer_name.removeprefix("urn:domain:"), key=self.peer.active)

    def signed(self, tx: dict[str, Any], key: SigningKey | None = None) -> dict[str, Any]:
        """``tx`` with its checksum and signature made again (by the peer's key by default)."""
        tx = {k: v for k, v in tx.items() if k != "signature"}
        tx["checksum"] = checksum(tx["payload"])
        tx["signature"] = (key or self.peer.active).sign(signing_input(tx))
        return tx

    def deliver(self, *txs: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.http.post("/federation/inbox", json={"transactions": list(txs)},
                              headers=headers or self.as_peer())


Send = Callable[[Target], list[httpx.Response]]


@dataclass(frozen=True)
class Case:
    name: str
    what: str
    send: Send


def b64(data: bytes | dict[str, Any]) -> str:
    raw = json.dumps(data).encode() if isinstance(data, dict) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def now_rfc3339(delta: timedelta = timedelta(0)) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- editor API --------------------------------------------------------------------
def post_items(body: bytes, content_type: str = "application/json") -> Send:
    def send(t: Target) -> list[httpx.Response]:
        return [t.http.post("/items", content=body, headers={**t.editor(), "Content-Type": content_type})]

    return send


def post_json(path: str, body: Any, *, editor: str = "ann", role: str = "editor") -> Send:
    def send(t: Target) -> list[httpx.Response]:
        url = path.format(**{k: v["gid"] for k, v in t.items.items()})
        return [t.http.post(url, json=body, headers=t.editor(editor, role))]

    return send


def editor_token(make: Callable[[Target], str]) -> Send:
    def send(t: Target) -> list[httpx.Response]:
        return [t.http.post("/items", json={"title": "x"}, headers={"Authorization": f"Bearer {make(t)}"})]

    return send


def _claims(t: Target, **changes: Any) -> dict[str, Any]:
    issued = int(time.time())
    return {"iss": t.name, "aud": tokens.audience(t.name), "sub": "mallory", "role": "admin", "iat": issued,
            "exp": issued + 600, "jti": uuid.uuid4().hex, **changes}


def _hs256_with_public_key(keyring: Keyring, claims: dict[str, Any]) -> str:
    public = keyring.active.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = b64({"alg": "HS256", "typ": "JWT", "kid": keyring.active.kid})
    body = b64(claims)
    mac = hmac.new(public, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64(mac)}"


def _alg_none(kid: str, claims: dict[str, Any]) -> str:
    return f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{b64(claims)}."


def _forged_editor(t: Target) -> str:
    other = SigningKey.generate(t.keyring.active.alg)
    return jwt.encode(_claims(t), other.private_key, algorithm=other.alg, headers={"kid": t.keyring.active.kid})


def _tampered_editor(t: Target) -> str:
    header, _, signature = t.editor()["Authorization"].removeprefix("Bearer ").split(".")
    return f"{header}.{b64(_claims(t))}.{signature}"


def _traversal(method: str, path: str) -> Send:
    def send(t: Target) -> list[httpx.Response]:
        body = None if method == "GET" else {"title": "x", "parent": str(uuid.uuid4())}
        return [t.http.request(method, path, json=body, headers=t.editor("ann", "admin"))]

    return send


def _other_editor_edits_owner_item(t: Target) -> list[httpx.Response]:
    item = t.items["owner"]
    return [t.http.patch(f"/items/{item['gid']}", json={"parent": item["head"], "markdown": "mine now\n"},
                         headers=t.editor("bob"))]


EDITOR = [
    Case("malformed-json", "POST /items with broken JSON", post_items(b'{"title": "x",')),
    Case("truncated-body", "POST /items with a document cut in the middle",
         post_items(json.dumps({"title": "a title", "markdown": "text\n" * 20}).encode()[:37])),
    Case("empty-body", "POST /items with an empty JSON body", post_items(b"")),
    Case("huge-integer", "a 5,000-digit number where a list of gids goes",
         post_items(b'{"title": "x", "tags": [' + b"9" * 5000 + b"]}")),
    Case("huge-float", "1e999 (infinity) as a title", post_items(b'{"title": 1e999}')),
    Case("deep-nesting", "100,000 nested arrays", post_items(b"[" * 100_000 + b"]" * 100_000)),
    Case("invalid-utf8", "bytes that are not UTF-8 in a string", post_items(b'{"title": "\xff\xfe\xfd"}')),
    Case("lone-surrogate", "a JSON escape of a lone UTF-16 surrogate", post_items(b'{"title": "\\ud800"}')),
    Case("nul-character", "a NUL character in a title (PostgreSQL text cannot hold it)",
         post_items(b'{"title": "a\\u0000b"}')),
    Case("wrong-content-type", "JSON sent as text/plain", post_items(b'{"title": "x"}', "text/plain")),
    Case("form-content-type", "a form instead of JSON", post_items(b"title=x", "application/x-www-form-urlencoded")),
    Case("unknown-field", "an unknown field in a create", post_json("/items", {"title": "x", "role": "admin"})),
    Case("wrong-type", "a list where a string goes", post_json("/items", {"title": ["x"]})),
    Case("invalid-uuid-in-body", "a tag gid that is not a UUID", post_json("/items", {"title": "x", "tags": ["nope"]})),
    Case("invalid-uuid-in-path", "PATCH /items/not-a-uuid", _traversal("PATCH", "/items/not-a-uuid")),
    Case("path-traversal-item", "PATCH /items/..%2F..%2Fetc%2Fpasswd",
         _traversal("PATCH", "/items/..%2F..%2Fetc%2Fpasswd")),
    Case("path-traversal-tag", "DELETE /tags/..%2F..%2Fitems", _traversal("DELETE", "/tags/..%2F..%2Fitems")),
    Case("oversized-body", "a 2 MiB markdown (the editor limit is 1 MiB)",
         post_items(json.dumps({"title": "x", "markdown": "y" * (2 << 20)}).encode())),
    Case("oversized-title", "a 5,000-character title", post_json("/items", {"title": "t" * 5000})),
    Case("script-injection-peer-name", "<script> as the peer of a share",
         post_json("/items/{network}/shares", {"peer": "<script>alert(1)</script>", "permission": "read"})),
    Case("script-injection-scope", "<script> as a scope", post_json("/items", {"title": "x", "scope": "<script>"})),
    Case("javascript-url-reference", "a cross-reference whose fallback URL is javascript:",
         post_json("/items", {"title": "x", "markdown": f"see {{item:{uuid.UUID(int=7)}:javascript:alert(1)}}\n"})),
    Case("javascript-url-edit", "an edit whose cross-reference fallback is a data: URL with a script",
         lambda t: [t.http.patch(f"/items/{t.items['network']['gid']}", headers=t.editor(), json={
             "parent": t.items["network"]["head"],
             "markdown": f"{{item:{uuid.UUID(int=8)}:data:text/html,<script>alert(1)</script>}}\n"})]),
    Case("javascript-url", "javascript: as a peer's base URL",
         post_json("/admin/peers", {"base_url": "javascript:alert(document.cookie)"}, role="admin")),
    Case("nul-in-query", "a NUL character in the title search", _traversal("GET", "/items?q=a%00b")),
    Case("nul-in-path", "a NUL character in a peer name in the path", _traversal("POST", "/admin/peers/a%00b/retry")),
    Case("owner-leak-edit", "another editor edits an OWNER item", _other_editor_edits_owner_item),
    Case("owner-leak-share", "another editor shares an OWNER item with a peer",
         post_json("/items/{owner}/shares", {"peer": "urn:domain:evil.example.com", "permission": "edit"},
                   editor="bob")),
    Case("not-an-admin", "an editor adds a peer", post_json("/admin/peers", {"base_url": "http://127.0.0.1:9"})),
    Case("editor-token-alg-none", "an editor token with alg none",
         editor_token(lambda t: _alg_none(t.keyring.active.kid, _claims(t)))),
    Case("editor-token-hs256-public-key", "HS256 keyed with the node's public key",
         editor_token(lambda t: _hs256_with_public_key(t.keyring, _claims(t)))),
    Case("editor-token-forged", "signed by another key under the node's kid", editor_token(_forged_editor)),
    Case("editor-token-tampered", "claims changed after signing", editor_token(_tampered_editor)),
    Case("editor-token-expired", "an expired editor token",
         editor_token(lambda t: t.issue("ann", lifetime=timedelta(seconds=60), now=time.time() - 3600))),
    Case("node-token-as-editor-token", "a node-to-node token on the editor API",
         editor_token(lambda t: node_token(t.keyring, t.name, t.name))),
]


# --- federation API -------------------------------------------------------------------
def inbox_raw(body: bytes, content_type: str = "application/json") -> Send:
    def send(t: Target) -> list[httpx.Response]:
        return [t.http.post("/federation/inbox", content=body,
                            headers={**t.as_peer(), "Content-Type": content_type})]

    return send


def inbox(make: Callable[[Target], list[Any]]) -> Send:
    def send(t: Target) -> list[httpx.Response]:
        return [t.deliver(*make(t))]

    return send


def _fresh_edit(t: Target, **changes: Any) -> dict[str, Any]:
    base = t.peer_txs["created"]
    edit = t.maker.edit(base, markdown="an edit\n")
    return t.signed({**edit, **changes})


def _cycle(t: Target) -> list[Any]:
    base = t.peer_txs["created"]
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    first = t.signed({**t.maker.edit(base, markdown="a\n"), "gid": a, "parents": [b]})
    second = t.signed({**t.maker.edit(base, markdown="b\n"), "gid": b, "parents": [a]})
    return [first, second]


def _self_parent(t: Target) -> list[Any]:
    gid = str(uuid.uuid4())
    return [_fresh_edit(t, gid=gid, parents=[gid])]


def _parent_of_another_entity(t: Target) -> list[Any]:
    return [_fresh_edit(t, parents=[t.node_txs["network"]["gid"]])]


def _forged_signature(t: Target) -> list[Any]:
    tx = _fresh_edit(t)
    return [{**tx, "signature": t.peer_txs["created"]["signature"]}]


def _tampered(t: Target) -> list[Any]:
    tx = copy.deepcopy(_fresh_edit(t))
    tx["payload"]["markdown"] = "changed after signing\n"
    tx["checksum"] = checksum(tx["payload"])
    return [tx]


def _re_keyed(t: Target) -> list[Any]:
    return [t.signed(t.maker.create_item("re-keyed"), key=SigningKey.generate("ES256"))]


def _origin_spoofed(t: Target) -> list[Any]:
    tx = t.maker.create_item("as if the node made it")
    tx = {**tx, "origin": t.name, "author": f"ann@{t.name}"}
    return [t.signed(tx)]


def _equivocation(t: Target) -> list[Any]:
    created = t.peer_txs["created"]
    payload = document(created["payload"]["title"], "other content, same gid\n")
    return [t.signed({**created, "payload": payload})]


def _future(t: Target) -> list[Any]:
    return [_fresh_edit(t, created_at=now_rfc3339(timedelta(days=365)))]


def _past(t: Target) -> list[Any]:
    return [t.signed({**t.maker.create_item("from 1970"), "created_at": "1970-01-01T00:00:00Z"})]


def _tag_not_accepted(t: Target) -> list[Any]:
    return [t.maker.create_tag("a tag this node does not accept from the peer")]


def _forged_share(t: Target) -> list[Any]:
    owner = t.node_txs["owner"]
    payload = {"item": owner["entity_gid"], "peer": t.peer_name, "permission": "edit", "revoked": False}
    return [t.maker.tx("share", None, "share.granted", [], payload, scope="OWNER")]


def _script_in_author(t: Target) -> list[Any]:
    return [t.signed({**t.maker.create_item("x"), "author": "<script>alert(1)</script>@" + t.peer_name})]


def _script_in_origin(t: Target) -> list[Any]:
    return [t.signed({**t.maker.create_item("x"), "origin": "urn:domain:<script>"})]


def _nul_in_payload(t: Target) -> list[Any]:
    return [t.maker.create_item("nul", "a\x00b\n")]


def _invalid_uuid(t: Target) -> list[Any]:
    return [t.signed({**t.maker.create_item("x"), "gid": "../../etc/passwd"})]


def _uppercase_gid(t: Target) -> list[Any]:
    tx = t.maker.create_item("x")
    return [t.signed({**tx, "gid": tx["gid"].upper()})]


def _missing_fields(t: Target) -> list[Any]:
    tx = t.maker.create_item("x")
    return [{k: v for k, v in tx.items() if k not in ("checksum", "parents")}]


def _unknown_tx_field(t: Target) -> list[Any]:
    return [t.signed({**t.maker.create_item("x"), "admin": True})]


def _node_token(make: Callable[[Target], str], method: str = "POST", path: str = "/federation/inbox") -> Send:
    def send(t: Target) -> list[httpx.Response]:
        body = {"transactions": []} if method == "POST" else None
        return [t.http.request(method, path, json=body, headers={"Authorization": f"Bearer {make(t)}"})]

    return send


def _node_claims(t: Target) -> dict[str, Any]:
    issued = int(time.time())
    return {"iss": t.peer_name, "aud": t.name, "iat": issued, "exp": issued + 30, "jti": uuid.uuid4().hex}


def _replayed(t: Target) -> list[httpx.Response]:
    token = t.node_token()
    first = t.http.post("/federation/inbox", json={"transactions": []}, headers={"Authorization": f"Bearer {token}"})
    assert first.status_code == 200, first.text  # the first use is fine, and changes nothing
    return [t.http.post("/federation/inbox", json={"transactions": []}, headers={"Authorization": f"Bearer {token}"})]


def _request(method: str, path: str, *, body: Any = None, auth: bool = True) -> Send:
    def send(t: Target) -> list[httpx.Response]:
        return [t.http.request(method, path, json=body, headers=t.as_peer() if auth else {})]

    return send


def _oversized_inbox(t: Target) -> list[httpx.Response]:
    return [t.deliver(*([t.peer_txs["created"]] * 1001))]


FEDERATION = [
    Case("fed-malformed-json", "broken JSON to the inbox", inbox_raw(b'{"transactions": [')),
    Case("fed-truncated-body", "an inbox batch cut in the middle", inbox_raw(b'{"transactions": [{"gid": "12')),
    Case("fed-deep-nesting", "100,000 nested arrays to the inbox", inbox_raw(b"[" * 100_000 + b"]" * 100_000)),
    Case("fed-invalid-utf8", "bytes that are not UTF-8 in the inbox", inbox_raw(b'{"transactions": ["\xff"]}')),
    Case("fed-huge-integer", "a 5,000-digit number in the inbox",
         inbox_raw(b'{"transactions": [' + b"9" * 5000 + b"]}")),
    Case("fed-wrong-content-type", "an inbox batch as text/plain",
         inbox_raw(b'{"transactions": []}', "text/plain")),
    Case("fed-unknown-field", "an unknown member next to transactions",
         _request("POST", "/federation/inbox", body={"transactions": [], "priority": "high"})),
    Case("fed-not-a-list", "transactions as an object", _request("POST", "/federation/inbox",
                                                                 body={"transactions": {"a": 1}})),
    Case("fed-missing-fields", "a transaction without checksum and parents", inbox(_missing_fields)),
    Case("fed-unknown-tx-field", "a signed transaction with an extra field", inbox(_unknown_tx_field)),
    Case("fed-invalid-uuid", "a gid that is a path, not a UUID", inbox(_invalid_uuid)),
    Case("fed-non-canonical-uuid", "an upper-case gid (one UUID, one spelling, one signature)", inbox(_uppercase_gid)),
    Case("fed-future-timestamp", "created_at a year ahead, validly signed", inbox(_future)),
    Case("fed-past-timestamp", "created_at in 1970, validly signed", inbox(_past)),
    Case("fed-parent-cycle", "two edits, each the other's parent", inbox(_cycle)),
    Case("fed-self-parent", "an edit that is its own parent", inbox(_self_parent)),
    Case("fed-parent-of-another-entity", "an edit whose parent is another item's transaction",
         inbox(_parent_of_another_entity)),
    Case("fed-forged-signature", "another transaction's signature", inbox(_forged_signature)),
    Case("fed-tampered", "markdown changed after signing", inbox(_tampered)),
    Case("fed-re-keyed", "signed by a key the peer never published", inbox(_re_keyed)),
    Case("fed-origin-spoofed", "the node's own name as origin, the peer's signature", inbox(_origin_spoofed)),
    Case("fed-equivocation", "a stored gid with other content, validly signed", inbox(_equivocation)),
    Case("fed-type-not-accepted", "a tag from a peer the node accepts only items and shares from",
         inbox(_tag_not_accepted)),
    Case("fed-owner-leak-forged-share", "the peer grants itself a share of the node's OWNER item",
         inbox(_forged_share)),
    Case("fed-script-in-author", "<script> in the author", inbox(_script_in_author)),
    Case("fed-script-in-origin", "<script> in the origin", inbox(_script_in_origin)),
    Case("fed-nul-in-payload", "a NUL character in markdown, validly signed", inbox(_nul_in_payload)),
    Case("fed-oversized-batch", "1,001 transactions in one inbox batch", _oversized_inbox),
    Case("fed-oversized-fetch", "5,001 gids in one fetch",
         _request("POST", "/federation/transactions:fetch",
                  body={"gids": [str(uuid.uuid4()) for _ in range(5001)]})),
    Case("fed-outbox-bad-cursor", "an 'after' that is a path", _request("GET", "/federation/outbox?after=..%2F..%2Fx")),
    Case("fed-outbox-unknown-cursor", "an 'after' gid the node never stored",
         _request("GET", f"/federation/outbox?after={uuid.UUID(int=1)}")),
    Case("fed-nul-in-origin", "keys of an origin with a NUL character",
         _request("GET", "/federation/keys?origin=urn%3Adomain%3Aa%00b")),
    Case("fed-keys-path-traversal", "keys of origin ../../etc/passwd",
         _request("GET", "/federation/keys?origin=..%2F..%2Fetc%2Fpasswd")),
    Case("fed-anonymous-subscribe", "a subscription without a node token",
         _request("POST", "/federation/subscriptions", body={}, auth=False)),
    Case("node-token-alg-none", "a node token with alg none",
         _node_token(lambda t: _alg_none(t.peer.active.kid, _node_claims(t)))),
    Case("node-token-hs256-public-key", "HS256 keyed with the peer's public key",
         _node_token(lambda t: _hs256_with_public_key(t.peer, _node_claims(t)))),
    Case("node-token-replayed", "a node token used twice", _replayed),
    Case("node-token-expired", "a node token that expired an hour ago",
         _node_token(lambda t: t.node_token(lifetime=30, now=time.time() - 3600))),
    Case("node-token-other-audience", "a node token for another node",
         _node_token(lambda t: t.node_token(audience="urn:domain:elsewhere.example.org"))),
    Case("node-token-unknown-peer", "a node token of a node that is no peer",
         _node_token(lambda t: t.node_token(keyring=t.stranger, issuer="urn:domain:stranger.example.com"))),
    Case("node-token-forged", "a node token signed by another key under the peer's kid",
         _node_token(lambda t: jwt.encode(_node_claims(t), SigningKey.generate("ES256").private_key,
                                          algorithm="ES256", headers={"kid": t.peer.active.kid}))),
]

CASES = EDITOR + FEDERATION
