"""The bad-input corpus against a running ``fedsync serve`` (SQLite and PostgreSQL).

One node per store serves the whole corpus (``tests/reliability/corpus.py``):
it holds an editor's NETWORK and OWNER items and a peer's item, and pins a
peer whose keys live in this process. For every class the store digest
(``tests/reliability/digest.py``) is taken before and after; each response
must be a 4xx problem document, and the node must still answer afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from domain.transaction import utc_now
from infrastructure.local_cluster import NodeProcess, free_port
from infrastructure.peers import Peer
from infrastructure.signing import Keyring
from tests.conftest import PG_ADMIN_URL, STORES, PostgresDatabases
from tests.reliability.corpus import CASES, Target
from tests.reliability.digest import digest

PEER = "urn:domain:peer.example.net"
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module", params=STORES)
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    root: Path = tmp_path_factory.mktemp(f"corpus-{request.param}")
    databases = PostgresDatabases(PG_ADMIN_URL) if request.param == "postgres" else None
    server = NodeProcess(data_dir=root / "node", database_url=databases.create() if databases else None).init()
    peer, stranger = Keyring.create(root / "peer-keys", "ES256"), Keyring.create(root / "stranger-keys", "ES256")
    admin = server.admin()  # kept open: it issues (and records) the corpus's editor tokens
    admin.keys.pin(PEER, peer.jwks())
    # Nothing listens at the peer's URL: ancestor fetches from it fail at once.
    admin.peers.add(Peer(name=PEER, base_url=f"http://127.0.0.1:{free_port()}",
                         send_types=("item", "tag", "share"), accept_types=("item", "share"),
                         created_at=utc_now()))
    server.start()
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        t = Target(http=http, name=admin.name, keyring=admin.keyring, issue=admin.tokens.issue, peer=peer,
                   peer_name=PEER, stranger=stranger, query=server.query)
        seed(t)
        yield t
    server.stop()
    admin.close()
    if databases:
        databases.drop_all()


def seed(t: Target) -> None:
    for key, scope in (("network", "NETWORK"), ("owner", "OWNER")):
        response = t.http.post("/items", json={"title": f"{key} item", "markdown": "text\n", "scope": scope},
                               headers=t.editor("ann"))
        assert response.status_code == 201, response.text
        t.items[key] = response.json()
    admin_view = {key: t.http.get(f"/items/{item['gid']}/history", headers=t.editor("ann")).json()
                  for key, item in t.items.items()}
    for key, history in admin_view.items():
        t.node_txs[key] = {"gid": history["nodes"][0]["gid"], "entity_gid": t.items[key]["gid"]}
    created = t.maker.create_item("the peer's item")
    stored = t.deliver(created)
    assert stored.status_code == 200 and stored.json()["results"][0]["status"] == "stored", stored.text
    t.peer_txs["created"] = created


def is_problem(response: httpx.Response) -> bool:
    if not 400 <= response.status_code < 500 or not response.headers.get("content-type", "").startswith(PROBLEM):
        return False
    body = response.json()
    return body.get("status") == response.status_code and all(
        isinstance(body.get(k), str) and body[k] for k in ("type", "title", "detail"))


def test_the_corpus_has_at_least_thirty_classes() -> None:
    assert len({case.name for case in CASES}) == len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_gets_a_4xx_problem_and_changes_nothing(target: Target, case) -> None:
    before = digest(target.query)

    responses = case.send(target)

    after = digest(target.query)
    for response in responses:
        assert is_problem(response), f"{case.what}: {response.status_code} {response.text[:300]}"
    assert after == before, f"{case.what}: the store changed"
    assert target.http.get("/.well-known/fedsync").status_code == 200
