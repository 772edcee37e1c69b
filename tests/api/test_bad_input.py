"""Every bad request gets a 4xx problem document and changes nothing (the outbox length stays)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from infrastructure import tokens
from infrastructure.node import Node
from infrastructure.node_auth import issue as issue_node_token
from infrastructure.signing import SigningKey
from tests.api.conftest import Api, is_problem

Case = Callable[[Api, dict[str, Any]], Any]


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(api: Api, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": api.node.name, "aud": tokens.audience(api.node.name), "sub": "mallory", "role": "admin",
              "iat": now, "exp": now + 600, "jti": uuid.uuid4().hex}
    return {**claims, **changes}


def forged_with_other_key(api: Api) -> str:
    other = SigningKey.generate(api.node.keyring.active.alg)
    return jwt.encode(_claims(api), other.private_key, algorithm=other.alg,
                      headers={"kid": api.node.keyring.active.kid})


def tampered(api: Api) -> str:
    header, _, signature = api.token("ann").split(".")
    return f"{header}.{_b64(_claims(api))}.{signature}"


def alg_none(api: Api) -> str:
    header = _b64({"alg": "none", "typ": "JWT", "kid": api.node.keyring.active.kid})
    return f"{header}.{_b64(_claims(api))}."


def hmac_with_public_key(api: Api) -> str:
    public = api.node.keyring.active.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = _b64({"alg": "HS256", "typ": "JWT", "kid": api.node.keyring.active.kid})
    payload = _b64(_claims(api))
    signature = base64.urlsafe_b64encode(
        hmac.new(public, f"{header}.{payload}".encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
    return f"{header}.{payload}.{signature}"


def with_token(token: Callable[[Api], str]) -> Case:
    def send(api: Api, item: dict[str, Any]) -> Any:
        return api.post("/items", json={"title": "x"}, headers={"Authorization": f"Bearer {token(api)}"})

    return send


def post_raw(body: bytes, content_type: str = "application/json") -> Case:
    def send(api: Api, item: dict[str, Any]) -> Any:
        return api.post("/items", content=body, headers={**api.auth(), "Content-Type": content_type})

    return send


def edit(body: dict[str, Any]) -> Case:
    def send(api: Api, item: dict[str, Any]) -> Any:
        return api.patch(f"/items/{item['gid']}", json={"parent": item["head"], **body}, headers=api.auth())

    return send


CASES: dict[str, tuple[int, Case]] = {
    "missing token": (401, lambda api, item: api.post("/items", json={"title": "x"})),
    "not a bearer token": (401, lambda api, item: api.post("/items", json={"title": "x"},
                                                           headers={"Authorization": "Basic YTpi"})),
    "garbage token": (401, with_token(lambda api: "not.a.jwt")),
    "forged token (other key, our kid)": (401, with_token(forged_with_other_key)),
    "tampered claims": (401, with_token(tampered)),
    "alg none": (401, with_token(alg_none)),
    "HS256 with the public key": (401, with_token(hmac_with_public_key)),
    "expired token": (401, with_token(lambda api: api.token("ann", lifetime=timedelta(seconds=1),
                                                            now=time.time() - 3600))),
    "token of another node": (401, with_token(lambda api: tokens.mint(api.node.keyring, "urn:domain:other.example",
                                                                       "ann"))),
    "node-to-node token": (401, with_token(lambda api: issue_node_token(api.node.keyring, api.node.name,
                                                                        api.node.name))),
    "unknown role claim": (401, with_token(lambda api: jwt.encode(
        _claims(api, role="root"), api.node.keyring.active.private_key, algorithm=api.node.keyring.active.alg,
        headers={"kid": api.node.keyring.active.kid}))),
    "malformed JSON": (400, post_raw(b'{"title": "x",')),
    "JSON that is not UTF-8": (400, post_raw(b'{"title": "\xff\xfe"}')),
    "JSON nested too deeply": (400, post_raw(b"[" * 100_000 + b"]" * 100_000)),
    "JSON that is not an object": (422, post_raw(b'["title"]')),
    "not JSON content type": (422, post_raw(b'{"title": "x"}', "text/plain")),
    "unknown field": (422, post_raw(b'{"title": "x", "owner": "me"}')),
    "wrong type": (422, post_raw(b'{"title": 42}')),
    "wrong type in list": (422, post_raw(b'{"title": "x", "tags": [1]}')),
    "invalid UUID in body": (422, post_raw(b'{"title": "x", "tags": ["not-a-uuid"]}')),
    "invalid scope": (422, post_raw(b'{"title": "x", "scope": "EVERYONE"}')),
    "invalid UUID in path": (422, lambda api, item: api.patch("/items/123", json={"title": "x"}, headers=api.auth())),
    "invalid UUID in If-Match": (400, lambda api, item: api.patch(
        f"/items/{item['gid']}", json={"title": "x"}, headers={**api.auth(), "If-Match": '"nope"'})),
    "If-Match and parent disagree": (400, lambda api, item: api.patch(
        f"/items/{item['gid']}", json={"title": "x", "parent": str(uuid.uuid4())},
        headers={**api.auth(), "If-Match": f'"{item["head"]}"'})),
    "oversized body": (413, post_raw(json.dumps({"title": "x", "markdown": "a" * (1024 * 1024)}).encode())),
    "oversized chunked body": (413, lambda api, item: api.post(
        "/items", content=iter([b'{"title": "x", "markdown": "', b"a" * (1024 * 1024), b'"}']),
        headers={**api.auth(), "Content-Type": "application/json"})),
    "unknown item": (404, lambda api, item: api.patch(f"/items/{uuid.uuid4()}", json={"parent": item["head"],
                                                                                        "title": "x"},
                                                      headers=api.auth())),
    "unknown fork source": (404, lambda api, item: api.post(f"/items/{uuid.uuid4()}/forks", json={},
                                                            headers=api.auth())),
    "stale parent": (409, edit({"parent": str(uuid.uuid4()), "title": "x"})),
    "javascript: fallback URL": (422, edit({"markdown": f"{{item:{uuid.uuid4()}:javascript:alert(1)}}"})),
    "edit that changes nothing": (422, edit({})),
    "unknown endpoint": (404, lambda api, item: api.get("/nothing-here", headers=api.auth())),
    "wrong method": (405, lambda api, item: api.put(f"/items/{item['gid']}", json={}, headers=api.auth())),
    "editor on an admin endpoint": (403, lambda api, item: api.get("/admin/keys", headers=api.auth())),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_request_is_a_problem_and_changes_nothing(api: Api, case: str) -> None:
    status, send = CASES[case]
    item = api.create(api.auth("ann"))
    before = api.outbox()

    response = send(api, item)

    assert is_problem(response, status), (response.status_code, response.text[:300])
    assert api.outbox() == before


def test_unauthorized_answers_say_how_to_authenticate(api: Api) -> None:
    response = api.get("/items")

    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_body_limit_is_configurable(node: Node) -> None:
    small = Api(Node.open(node.settings.model_copy(update={"max_body_bytes": 100})))
    try:
        response = small.post("/items", json={"title": "x" * 200}, headers=small.auth())
        fits = small.post("/items", json={"title": "x"}, headers=small.auth())
    finally:
        small.client.close()
        small.node.close()

    assert is_problem(response, 413)
    assert fits.status_code == 201


def test_markdown_with_script_is_stored_once_and_rendered_escaped(api: Api) -> None:
    ann = api.auth("ann")
    before = api.outbox()

    created = api.post("/items", json={"title": "x", "markdown": "<script>alert(1)</script>"}, headers=ann)
    rendered = api.get(f"/items/{created.json()['gid']}/rendered", headers=ann).json()

    assert created.status_code == 201 and api.outbox() == before + 1
    assert created.json()["markdown"] == "<script>alert(1)</script>"
    assert rendered["html"] == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"


def test_a_body_that_is_not_json_at_all_is_the_malformed_json_problem(api: Api) -> None:
    item = api.create(api.auth())
    for body in (b'{"markdown": "\xff\xfe"}', b"[" * 100_000 + b"]" * 100_000, b'{"markdown": '):
        answer = api.patch(f"/items/{item['gid']}", content=body,
                           headers={**api.auth(), "Content-Type": "application/json", "If-Match": f'"{item["head"]}"'})
        assert is_problem(answer, 400), answer.text[:200]
        assert answer.json()["type"] == "urn:fedsync:problem:malformed-json", answer.text[:200]
