"""CORS (issue 13): off by default; the origins in FEDSYNC_CORS_ORIGINS may call the API from a browser."""

from __future__ import annotations

import warnings

from api.app import create_app
from infrastructure.node import Node

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PREFLIGHT = {"Access-Control-Request-Method": "PATCH", "Access-Control-Request-Headers": "authorization,if-match"}


def client(node: Node, origins: str) -> TestClient:
    return TestClient(create_app(node.settings.model_copy(update={"cors_origins": origins}), node),
                      raise_server_exceptions=False)


def test_no_origin_is_allowed_by_default(node: Node):
    api = client(node, "")
    response = api.options("/items", headers={"Origin": "https://portal.example.org", **PREFLIGHT})
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in api.get("/healthz", headers={"Origin": "https://x.example"}).headers


def test_a_listed_origin_gets_preflight_and_exposed_headers_and_others_do_not(node: Node):
    api = client(node, "https://portal.example.org, https://other.example.org")
    allowed = api.options("/items", headers={"Origin": "https://portal.example.org", **PREFLIGHT})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://portal.example.org"
    assert "if-match" in allowed.headers["access-control-allow-headers"].lower()
    token = node.tokens.issue("ann")
    created = api.post("/items", json={"title": "t", "markdown": "m\n"},
                       headers={"Origin": "https://other.example.org", "Authorization": f"Bearer {token}"})
    assert created.status_code == 201
    assert created.headers["access-control-allow-origin"] == "https://other.example.org"
    assert "etag" in created.headers["access-control-expose-headers"].lower()
    refused = api.options("/items", headers={"Origin": "https://evil.example.net", **PREFLIGHT})
    assert "access-control-allow-origin" not in refused.headers
