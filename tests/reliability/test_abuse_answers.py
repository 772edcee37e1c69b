"""Abuse: a URL that answers without end, says it will answer gigabytes, or answers a gzip bomb.

Every answer a node reads from another (``peer add``'s node description and
keys, outbox pages, fetches, key reads, inbox answers, attachments) used to
be read whole before anything looked at it: a hostile or broken peer could
make us hold as much as it cared to send. A real HTTP server on 127.0.0.1
streams JSON-looking bytes until the reader hangs up (at most ``CAP``), or
declares a 10 GiB ``Content-Length``; the reader gives up at its bound
(``FederationClient.max_answer_bytes``, by default as much as a peer's
request body may be here) with a ``BadAnswer``, having taken little more than
the bound off the socket, and no peer is stored. The node asks for answers
as they are (``Accept-Encoding: identity``) and refuses one in a content
coding: 64 KiB of gzip decoded to 64 MiB in one read before the bound was
looked at.
"""

from __future__ import annotations

import gzip
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from infrastructure.federation_client import MAX_ANSWER_BYTES, BadAnswer, FederationClient
from infrastructure.node import Node
from infrastructure.peers import Peer
from tests.forkserver import fedsync
from tests.reliability.hostile_peer import serving

CAP = 4 * MAX_ANSWER_BYTES  # the most the endless server sends before it stops on its own
CHUNK = b"0," * 32 * 1024
PEER = "urn:domain:p.example.net"
sent: dict[str, int] = {}  # path -> bytes the server wrote for the last request on it
asked: dict[str, str | None] = {}  # path -> the Accept-Encoding of the last request on it
BOMB = gzip.compress(b"0" * 64 * 1024 * 1024, compresslevel=9)  # 64 MiB of JSON-looking bytes in ~64 KiB


class Endless(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        self._answer()

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._answer()

    def _answer(self) -> None:
        path = self.path.split("?")[0]
        asked[path] = self.headers.get("Accept-Encoding")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if path.startswith("/gzip"):  # compressed whatever the request asked for
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(BOMB)))
            self.end_headers()
            self.wfile.write(BOMB)
            return
        if path.startswith("/huge"):  # says 10 GiB, sends a little
            self.send_header("Content-Length", str(10 * 1024**3))
            self.end_headers()
            self.wfile.write(b"[" + CHUNK)
            return
        self.send_header("Connection", "close")  # the body ends when the server hangs up
        self.end_headers()
        written = 0
        try:
            self.wfile.write(b"[")
            while written < CAP:
                self.wfile.write(CHUNK)
                written += len(CHUNK)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            sent[path] = written

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serving(Endless) as url:
        yield url


def _taken_off_the_socket(path: str, limit: int) -> None:
    """The server could write only a little more than the bound before the reader hung up (socket buffers)."""
    for _ in range(100):  # the server's thread notes what it wrote once the write fails
        if path in sent:
            break
        threading.Event().wait(0.05)
    assert sent.get(path, CAP) < limit + 16 * 1024 * 1024, sent


@pytest.mark.parametrize("call", ["outbox", "gids", "fetch", "keys_of", "deliver", "node_info", "jwks", "blob"])
def test_every_answer_from_a_peer_is_cut_off_at_the_bound(server: str, call: str) -> None:
    limit = 1024 * 1024
    client = FederationClient(lambda peer: "token", max_answer_bytes=limit)
    base = f"{server}/endless-{call}"
    requests = {
        "outbox": lambda: client.outbox(PEER, base, None),
        "gids": lambda: client.gids(PEER, base, None),
        "fetch": lambda: client.fetch(PEER, base, ["a"], ancestors=True),
        "keys_of": lambda: client.keys_of(PEER, base, "urn:domain:q.example.net"),
        "deliver": lambda: client.deliver(PEER, base, [{"gid": "a"}]),
        "node_info": lambda: client.node_info(base),
        "jwks": lambda: client.jwks(base),
        "blob": lambda: client.blob(PEER, base, "0" * 64, max_bytes=limit),
    }
    sent.clear()

    with pytest.raises(BadAnswer, match=f"longer than the {limit} bytes"):
        requests[call]()

    path = {"outbox": "/federation/outbox", "gids": "/federation/outbox/gids",
            "fetch": "/federation/transactions:fetch", "keys_of": "/federation/keys", "deliver": "/federation/inbox",
            "node_info": "/.well-known/fedsync", "jwks": "/.well-known/jwks.json",
            "blob": f"/federation/blobs/{'0' * 64}"}[call]
    _taken_off_the_socket(f"/endless-{call}{path}", limit)
    client.close()


def test_an_answer_that_says_it_is_longer_than_the_bound_is_not_read(server: str) -> None:
    client = FederationClient(lambda peer: "token", max_answer_bytes=1024 * 1024)

    with pytest.raises(BadAnswer, match="longer than"):
        client.outbox(PEER, f"{server}/huge", None)
    client.close()


def test_a_compressed_answer_is_refused_before_it_is_decoded(server: str) -> None:
    client = FederationClient(lambda peer: "token", max_answer_bytes=1024 * 1024)

    with pytest.raises(BadAnswer, match="in the content coding 'gzip', where this node asked for none"):
        client.outbox(PEER, f"{server}/gzip", None)

    assert asked["/gzip/federation/outbox"] == "identity"
    client.close()


def test_doctor_reads_a_peer_within_the_bound(node: Node, server: str) -> None:
    """``fedsync doctor`` reads each peer's node description: it read an endless one whole (128 MiB here)."""
    node.peers.add(Peer(name=PEER, base_url=f"{server}/endless-doctor", send_types=("item",), accept_types=("item",)))
    env = dict(os.environ, FEDSYNC_DATA_DIR=str(node.settings.data_dir), COLUMNS="200")
    if node.settings.database_url:
        env["FEDSYNC_DATABASE_URL"] = node.settings.database_url
    sent.clear()

    result = fedsync("doctor", env=env, timeout=120)

    output = result.stdout + result.stderr
    assert result.returncode == 1 and f"peer {PEER}: {server}/endless-doctor does not answer as a fedsync node" \
        in output and "BadAnswer" in output, output
    _taken_off_the_socket("/endless-doctor/.well-known/fedsync", MAX_ANSWER_BYTES)


def test_peer_add_against_an_endless_answer_fails_in_one_line_and_stores_nothing(node: Node, server: str) -> None:
    """The node's own client, at its default bound (the federation body limit, 32 MiB)."""
    assert node.client.max_answer_bytes == node.settings.federation_max_body_bytes == MAX_ANSWER_BYTES
    env = dict(os.environ, FEDSYNC_DATA_DIR=str(node.settings.data_dir), COLUMNS="80")
    if node.settings.database_url:
        env["FEDSYNC_DATABASE_URL"] = node.settings.database_url
    sent.clear()

    result = fedsync("peer", "add", f"{server}/endless", env=env, timeout=60)

    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 1, output
    assert output == (f"fedsync: cannot peer with {server}/endless: GET {server}/endless/.well-known/fedsync: "
                      f"the answer is longer than the {MAX_ANSWER_BYTES} bytes this node reads from a peer"), output
    _taken_off_the_socket("/endless/.well-known/fedsync", MAX_ANSWER_BYTES)
    assert node.peers.all() == []
