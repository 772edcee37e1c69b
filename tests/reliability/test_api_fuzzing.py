"""Schemathesis against a running node's own OpenAPI document (SQLite and PostgreSQL).

Every operation of the editor, admin and federation APIs gets generated
requests (valid and invalid), each with a valid credential: an admin
editor token for the editor API, a fresh node token of a pinned peer for
the federation API (a node token is single-use). The answers must never be
5xx and must match the document: documented status codes, content types,
headers and response schemas.

Left out: ``POST /admin/peers`` and ``POST /admin/webhooks`` (they would make
the node call whatever URL was generated) and ``DELETE /admin/peers/{name}`` (it would remove the peer
whose tokens the federation operations use), and ``GET /events``: a good request opens a stream that
stays open until the client leaves, so each case would wait for the client's timeout; its answers are
tested in ``tests/api/test_events.py`` and ``tests/e2e/test_events.py``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from domain.transaction import utc_now
from infrastructure.local_cluster import NodeProcess, free_port
from infrastructure.node_auth import issue as node_token
from infrastructure.peers import Peer
from infrastructure.settings import Settings
from infrastructure.signing import Keyring
from tests.conftest import PG_ADMIN_URL, STORES, PostgresDatabases
from tests.reliability.conftest import count, record

EXAMPLES = count("fuzz_examples", 20, 200)
PEER = "urn:domain:fuzz-peer.example.net"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
CASES: Counter[str] = Counter()


class Server:
    def __init__(self, process: NodeProcess, keyring: Keyring, peer: Keyring) -> None:
        self.process = process
        self.keyring = keyring
        self.peer = peer
        self.editor = process.token("fuzzer", role="admin")

    def headers_for(self, path: str) -> dict[str, str]:
        if path.startswith("/federation/"):
            return {"Authorization": f"Bearer {node_token(self.peer, PEER, self.process.name)}"}
        return {"Authorization": f"Bearer {self.editor}"}


@pytest.fixture(scope="module", params=STORES)
def fuzz_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root: Path = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    databases = PostgresDatabases(PG_ADMIN_URL) if request.param == "postgres" else None
    process = NodeProcess(data_dir=root / "node", database_url=databases.create() if databases else None).init()
    peer = Keyring.create(root / "peer-keys", "ES256")
    admin = process.admin()
    try:
        admin.keys.pin(PEER, peer.jwks())
        admin.peers.add(Peer(name=PEER, base_url=f"http://127.0.0.1:{free_port()}", send_types=("item", "tag", "share"),
                             accept_types=("item", "tag", "share"), created_at=utc_now()))
        author = f"fuzzer@{admin.name}"
        item = admin.app.create_item(author=author, title="seed", markdown="seed\n")
        admin.app.create_tag(author=author, name="seed")
        admin.app.grant_share(author=author, item_gid=item.entity_gid, peer=PEER, permission="read")
        keyring = admin.keyring
    finally:
        admin.close()
    process.start()
    served = httpx.get(f"{process.base_url}/openapi.json", timeout=30).json()
    assert served == json.loads(json.dumps(openapi_document())), "the server serves another OpenAPI document"
    yield Server(process, keyring, peer)
    process.stop()
    record("api fuzzing", store=request.param, cases=sum(CASES.values()), operations=len(CASES),
           examples_per_operation=EXAMPLES)
    CASES.clear()
    if databases:
        databases.drop_all()


def openapi_document() -> dict[str, Any]:
    """The node's OpenAPI document, as every node serves it at /openapi.json (building the app opens nothing)."""
    return create_app(Settings()).openapi()


# Loaded at collection, so pytest can list one test per operation; the fixture checks the
# running server serves this very document.
schema = schemathesis.openapi.from_dict(openapi_document()).exclude(method="POST", path="/admin/peers").exclude(
    method="DELETE", path="/admin/peers/{name}").exclude(method="POST", path="/admin/webhooks").exclude(
    method="GET", path="/events")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error_or_an_answer_outside_the_schema(case, fuzz_server: Server) -> None:
    CASES[case.operation.label] += 1

    case.call_and_validate(base_url=fuzz_server.process.base_url, headers=fuzz_server.headers_for(case.path),
                           checks=CHECKS, timeout=30)
