"""Abuse: ``peer add`` against a URL that answers garbage (issue 12, finding 12).

``fedsync peer add URL`` and ``POST /admin/peers`` used to echo up to 200
characters of whatever the URL answered, and answered 500 (the CLI: a
traceback) when the answer was JSON without ``name``. A real HTTP server on
127.0.0.1 answers garbage, HTML, JSON without a name, a name that is no node
name, keys that are no keys, and error pages. The admin API answers 502
(``bad-peer-answer`` when the URL answered something that is not a fedsync
node's answer, ``peer-unreachable`` when it answered an error); the CLI
prints one line and exits 1; neither quotes a byte of the answer, and no
peer is stored. A peer's own error text is shown by ``peer list`` as text,
never as console markup.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from domain.federation import Breaker
from infrastructure.node import Node
from infrastructure.peers import Peer
from tests.api.conftest import Api, is_problem
from tests.forkserver import fedsync
from tests.reliability.hostile_peer import serving

SECRET = "SECRET-BODY"  # in every answer of the server: it must never reach an error
ANSWERS: dict[str, tuple[int, str, bytes]] = {  # path prefix -> status, content type, body (for every path)
    "garbage": (200, "application/octet-stream", b"\x00\xff\xfe " + SECRET.encode() + b" \x1b[31m"),
    "html": (200, "text/html", f"<html><body><h1>{SECRET}</h1>[bold red]markup[/]</body></html>".encode()),
    "no-name": (200, "application/json", json.dumps({"hello": SECRET}).encode()),
    "a-list": (200, "application/json", json.dumps([SECRET]).encode()),
    "bad-name": (200, "application/json", json.dumps({"name": f"<script>{SECRET}</script>"}).encode()),
    "error-page": (500, "text/html", f"<h1>{SECRET}: internal error</h1>".encode()),
    "problem": (404, "application/problem+json", json.dumps({"status": 404, "detail": SECRET}).encode()),
}
BAD_ANSWERS = ["garbage", "html", "no-name", "a-list", "bad-name", "bad-keys"]
ERRORS = ["error-page", "problem"]


class Garbage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        prefix = self.path.strip("/").split("/")[0]
        if prefix == "bad-keys":  # a proper node description, then keys that are no keys
            host = self.headers["Host"]
            status, kind, body = (200, "application/json", json.dumps(
                {"name": f"urn:domain:{host}"} if self.path.endswith("/fedsync") else
                {"keys": [{"kty": "RSA", "n": SECRET, "e": SECRET, "kid": SECRET}]}).encode())
        else:
            status, kind, body = ANSWERS[prefix]
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The base URL of a real HTTP server on 127.0.0.1 that answers what ANSWERS says."""
    with serving(Garbage) as url:
        yield url


@pytest.fixture
def api(node: Node) -> Iterator[Api]:
    client = Api(node)
    yield client
    client.client.close()


@pytest.mark.parametrize("answer", BAD_ANSWERS + ERRORS)
def test_admin_api_peer_add_answers_502_without_quoting_the_answer(api: Api, server: str, answer: str) -> None:
    response = api.post("/admin/peers", json={"base_url": f"{server}/{answer}"}, headers=api.auth("root", role="admin"))

    assert is_problem(response, 502), response.text
    expected = "bad-peer-answer" if answer in BAD_ANSWERS else "peer-unreachable"
    assert response.json()["type"] == f"urn:fedsync:problem:{expected}"
    assert SECRET not in response.text and "script" not in response.text
    assert f"{server}/{answer}" in response.json()["detail"]
    assert api.node.peers.all() == []


@pytest.mark.parametrize("answer", BAD_ANSWERS + ERRORS)
def test_cli_peer_add_prints_one_line_and_exits_1_without_quoting_the_answer(node: Node, server: str,
                                                                             answer: str) -> None:
    env = dict(os.environ, FEDSYNC_DATA_DIR=str(node.settings.data_dir), COLUMNS="80")
    if node.settings.database_url:
        env["FEDSYNC_DATABASE_URL"] = node.settings.database_url

    result = fedsync("peer", "add", f"{server}/{answer}", env=env, timeout=60)

    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 1, output
    assert "Traceback" not in output and SECRET not in output
    assert len(output.splitlines()) == 1 and output.startswith(f"fedsync: cannot peer with {server}/{answer}: "), output
    assert node.peers.all() == []


def test_cli_peer_list_shows_a_peers_error_text_as_text(node: Node) -> None:
    node.peers.add(Peer(name="urn:domain:b.example.net", base_url="http://127.0.0.1:9", send_types=("item",),
                        accept_types=("item",), created_at="2026-01-01T00:00:00Z"))
    node.peers.failed("urn:domain:b.example.net", "2026-01-01T00:00:01Z", "401 [/] [bold]shouting[/bold]",
                      Breaker(), 0.0)
    env = dict(os.environ, FEDSYNC_DATA_DIR=str(node.settings.data_dir), COLUMNS="400")
    if node.settings.database_url:
        env["FEDSYNC_DATABASE_URL"] = node.settings.database_url

    result = fedsync("peer", "list", env=env, timeout=60)

    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "401 [/] [bold]shouting[/bold]" in result.stdout
