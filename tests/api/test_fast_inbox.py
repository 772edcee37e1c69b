"""``POST /federation/inbox`` answered by ``api.fast_paths.FastInbox`` gives what the route gives (both stores).

The route still takes what the fast path does not (here: a ``+json`` media
type, which FastAPI reads as JSON), so each batch is sent both ways.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from api.fast_paths import FastInbox
from infrastructure.node_auth import issue as node_token
from infrastructure.signing import Keyring
from tests.api.conftest import Api, is_problem
from tests.api.test_ui_admin import Sender


@pytest.fixture
def sender(api: Api, tmp_path: Path) -> Sender:
    return Sender(api, Keyring.create(tmp_path / "p-keys", "ES256"))


def fast_path(api: Api) -> FastInbox:
    if api.client.app.middleware_stack is None:  # built at the first request
        api.get("/healthz")
    layer: Any = api.client.app.middleware_stack
    while not isinstance(layer, FastInbox):
        layer = layer.app
    return layer


def post(api: Api, sender: Sender, body: bytes, media: str = "application/json") -> Any:
    token = node_token(sender.keys, sender.name, api.node.name)
    return api.post("/federation/inbox", content=body,
                    headers={"Authorization": f"Bearer {token}", "Content-Type": media})


def both_ways(api: Api, sender: Sender, body: bytes) -> tuple[Any, Any]:
    """The fast path's answer and the route's to the same bytes (the route's first, then the fast path's;
    so a batch the route stored is a duplicate for the fast path: see the callers)."""
    routed = post(api, sender, body, "application/fedsync+json")
    before = fast_path(api).answered
    fast = post(api, sender, body)
    assert fast_path(api).answered == before + 1
    return fast, routed


def test_a_batch_taken_by_the_fast_path_is_stored_as_the_route_stores_it(api: Api, sender: Sender) -> None:
    created = sender.maker.create_item("Pushed", "one\n")
    edited = sender.maker.edit(created, markdown="two\n")
    before = fast_path(api).answered

    answer = post(api, sender, orjson.dumps({"transactions": [created, edited]}))
    again, routed_again = both_ways(api, sender, orjson.dumps({"transactions": [edited]}))

    assert fast_path(api).answered == before + 2
    assert answer.status_code == 200, answer.text
    assert [r["status"] for r in answer.json()["results"]] == ["stored", "stored"]
    assert again.json() == routed_again.json() == {"results": [{"gid": edited["gid"], "status": "duplicate"}]}
    assert api.outbox() == 2
    metrics = api.get("/metrics", headers=api.auth("root", role="admin")).text
    assert 'method="POST",route="/federation/inbox",status="200"' in metrics


def test_a_batch_refused_whole_is_the_same_problem_both_ways(api: Api, sender: Sender) -> None:
    body = orjson.dumps({"transactions": [sender.tampered()]})

    fast, routed = both_ways(api, sender, body)

    assert fast.status_code == routed.status_code and is_problem(fast, fast.status_code)
    assert {k: v for k, v in fast.json().items() if k != "instance"} == \
        {k: v for k, v in routed.json().items() if k != "instance"}
    assert api.outbox() == 0


@pytest.mark.parametrize(("name", "body", "status"), [
    ("an unknown field", b'{"transactions": [], "more": 1}', 422),
    ("no transactions", b"{}", 422),
    ("not an object", b"[]", 422),
    ("malformed JSON", b'{"transactions": [', 400),
])
def test_what_the_fast_path_does_not_take_goes_to_the_route(api: Api, sender: Sender, name: str, body: bytes,
                                                            status: int) -> None:
    before = fast_path(api).answered

    answer = post(api, sender, body)

    assert fast_path(api).answered == before, name
    assert is_problem(answer, status), (name, answer.text)


def test_a_request_without_a_node_token_never_reaches_the_inbox(api: Api, sender: Sender) -> None:
    before = fast_path(api).answered
    answer = api.post("/federation/inbox", json={"transactions": [sender.maker.create_item("x", "y\n")]})

    assert fast_path(api).answered == before
    assert is_problem(answer, 401) and api.outbox() == 0


def test_the_sender_s_peer_record_is_read_once_per_batch(api: Api, sender: Sender, monkeypatch) -> None:
    """The body limit reads it to authenticate the request; the inbox takes that one instead of a second
    round trip on PostgreSQL (on the way of every pushed edit)."""
    created = sender.maker.create_item("Pushed", "one\n")
    edited = sender.maker.edit(created, markdown="two\n")
    assert post(api, sender, orjson.dumps({"transactions": [created]})).status_code == 200  # the sender's keys read
    reads: list[str] = []
    read = api.node.peers.get
    monkeypatch.setattr(api.node.peers, "get", lambda name: reads.append(name) or read(name))

    answer = post(api, sender, orjson.dumps({"transactions": [edited]}))

    assert answer.status_code == 200 and answer.json()["results"][0]["status"] == "stored", answer.text
    assert reads == [sender.name]
