"""A hostile or slow peer for the abuse tests: a real HTTP server on 127.0.0.1 with its own key.

It answers what a node asks of a peer (``/.well-known/fedsync``,
``/.well-known/jwks.json``, ``/federation/keys``, ``/federation/outbox``),
with configurable delays and answers, and counts every request by path.
Use it as a context manager: the server is shut down on exit.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

from infrastructure.local_cluster import free_port
from infrastructure.node_auth import issue
from infrastructure.signing import SigningKey
from tests.factory import SigningPeer

Outbox = Callable[[int, str | None], dict[str, Any] | None]  # (n-th request, after) -> page; None: 500


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """The base URL of a real HTTP server on 127.0.0.1 (a free port) answering with ``handler``; shut down after."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


class HostilePeer:
    def __init__(self, *, jwks_delay: float = 0.0, outbox: Outbox | None = None) -> None:
        self.port = free_port()
        self.signer = SigningPeer(host=f"127.0.0.1:{self.port}")  # signs transactions as this peer
        self.published = [self.signer.key]  # the keys its JWKS lists
        self.jwks_delay = jwks_delay
        self.outbox = outbox
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def name(self) -> str:
        return self.signer.name

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.public_jwk() for key in self.published]}

    def token_for(self, audience: str, key: SigningKey | None = None) -> str:
        """A node token in this peer's name, signed with ``key`` (default: its first key)."""
        return issue(SimpleNamespace(active=key or self.published[0]), self.name, audience)

    def __enter__(self) -> HostilePeer:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server name
                url = urlsplit(self.path)
                with peer._lock:
                    peer.hits[url.path] += 1
                    n = peer.hits[url.path]
                if url.path == "/.well-known/fedsync":
                    self._json({"name": peer.name, "base_url": peer.base_url})
                elif url.path == "/.well-known/jwks.json":
                    time.sleep(peer.jwks_delay)
                    self._json(peer.jwks())
                elif url.path == "/federation/keys":
                    time.sleep(peer.jwks_delay)
                    self._json({"jwks": peer.jwks()})
                elif url.path == "/federation/outbox" and peer.outbox is not None:
                    page = peer.outbox(n, parse_qs(url.query).get("after", [None])[0])
                    self._json(page) if page is not None else self._json({"detail": "gone wrong"}, 500)
                else:
                    self._json({"detail": "not here"}, 404)

            def _json(self, body: Any, status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
