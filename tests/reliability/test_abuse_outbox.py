"""Abuse: the outbox's cursors and answers reveal nothing a caller may not see (issue 12, finding 9).

A node's outbox holds transactions that some callers may not see (``OWNER``
items, items shared with another node, ``NETWORK`` items for anonymous
callers). Before this, the cursor ``last`` that pages end with was the gid
of the last entry examined, visible or not, and ``after=<gid>`` paged on
from any stored gid: anyone could collect the gids of hidden transactions
and confirm a guessed one. Now the cursor is opaque (sealed for one caller),
a gid given as ``after`` counts only if the caller may see it, and a hidden
gid answers exactly like one the node never stored.

The world of these tests, on a node ``a.example.org``, oldest first:
a ``PUBLIC`` item (everyone sees it), a ``NETWORK`` item (peers see it),
an ``OWNER`` item shared with peer P (P sees it, Q does not), and an
``OWNER`` item nobody else sees, stored last.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from infrastructure.federation_client import FederationClient, PeerError
from infrastructure.local_cluster import NodeProcess
from infrastructure.node import Node
from infrastructure.node_auth import issue as node_token
from infrastructure.peers import Peer
from infrastructure.signing import Keyring
from tests.api.conftest import is_problem
from tests.e2e.conftest import Spawner, link
from tests.factory import author

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from api.app import create_app  # noqa: E402

P = "urn:domain:p.example.net"
Q = "urn:domain:q.example.com"
ENDPOINTS = ("/federation/outbox", "/federation/outbox/gids")


@dataclass
class World:
    node: Node
    http: TestClient
    keys: dict[str, Keyring]  # the peers' own keys (pinned on the node)
    visible: dict[str | None, set[str]]  # caller (None: anonymous) -> the gids it may see
    every: set[str]  # every transaction and entity gid of the node

    def headers(self, caller: str | None) -> dict[str, str]:
        if caller is None:
            return {}
        return {"Authorization": f"Bearer {node_token(self.keys[caller], caller, self.node.name)}"}

    def get(self, caller: str | None, path: str, after: str | None = None) -> httpx.Response:
        return self.http.get(path, params={"after": after} if after else {}, headers=self.headers(caller))

    def fetch(self, caller: str | None, gids: list[str], ancestors: bool = False) -> httpx.Response:
        return self.http.post("/federation/transactions:fetch", json={"gids": gids, "ancestors": ancestors},
                              headers=self.headers(caller))

    def hidden(self, caller: str | None) -> set[str]:
        return self.every - self.visible[caller]

    def hidden_transactions(self, caller: str | None) -> list[str]:
        return [g for g in self.outbox() if g not in self.visible[caller]]

    def outbox(self) -> list[str]:
        return [tx["gid"] for _, tx in self.node.app.outbox_after(None, 10_000)]

    def pages(self, caller: str | None, path: str) -> list[httpx.Response]:
        """Every page from the start, following ``last`` while ``more``."""
        answers, after = [], None
        for _ in range(100):  # bounded
            answer = self.get(caller, path, after)
            assert answer.status_code == 200, answer.text
            answers.append(answer)
            if not answer.json()["more"]:
                return answers
            after = answer.json()["last"]
        raise AssertionError("paging did not end")


@pytest.fixture
def world(node: Node, tmp_path: Path) -> Iterator[World]:
    keys = {}
    for name in (P, Q):
        keys[name] = Keyring.create(tmp_path / name.rsplit(":", 1)[1], "ES256")
        node.keys.pin(name, keys[name].jwks())
        node.peers.add(Peer(name=name, base_url=f"https://{name.rsplit(':', 1)[1]}",
                            send_types=("item", "tag", "share"), accept_types=("item", "tag", "share")))
    ann = author(node.name)
    public = node.app.create_item(author=ann, title="public", markdown="p\n", scope="PUBLIC")
    network = node.app.create_item(author=ann, title="network", markdown="n\n", scope="NETWORK")
    for_p = node.app.create_item(author=ann, title="for P", markdown="o\n", scope="OWNER")
    share = node.app.grant_share(author=ann, item_gid=for_p.entity_gid, peer=P, permission="read")
    secret = node.app.create_item(author=ann, title="secret", markdown="s\n", scope="OWNER")
    gids = {name: {r.gid, r.entity_gid} for name, r in
            (("public", public), ("network", network), ("for_p", for_p), ("share", share), ("secret", secret))}
    visible = {None: gids["public"], P: gids["public"] | gids["network"] | gids["for_p"] | gids["share"],
               Q: gids["public"] | gids["network"]}
    http = TestClient(create_app(node.settings, node), raise_server_exceptions=False)
    yield World(node, http, keys, visible, set().union(*gids.values()))
    http.close()


def same_answer(one: httpx.Response, other: httpx.Response, one_gid: str, other_gid: str) -> bool:
    """Same status, same media type, same body once each names its own gid the same way."""
    return (one.status_code == other.status_code
            and one.headers["content-type"] == other.headers["content-type"]
            and one.text.replace(one_gid, "<gid>") == other.text.replace(other_gid, "<gid>"))


@pytest.mark.parametrize("caller", [None, P, Q], ids=["anonymous", "peer-P", "peer-Q"])
@pytest.mark.parametrize("path", ENDPOINTS)
def test_pages_and_their_cursors_name_nothing_the_caller_may_not_see(world: World, caller: str | None,
                                                                     path: str) -> None:
    answers = world.pages(caller, path)

    text = "".join(answer.text for answer in answers)
    assert [g for g in world.hidden(caller) if g in text] == []
    cursors = [answer.json()["last"] for answer in answers]
    assert all(cursor and cursor not in world.every for cursor in cursors)
    listed = {g for answer in answers for g in (answer.json().get("gids") or
                                                [tx["gid"] for tx in answer.json().get("transactions", [])])}
    assert listed == {g for g in world.outbox() if g in world.visible[caller]}


@pytest.mark.parametrize("caller", [None, P, Q], ids=["anonymous", "peer-P", "peer-Q"])
@pytest.mark.parametrize("path", ENDPOINTS)
def test_after_a_hidden_gid_answers_exactly_like_after_an_unknown_gid(world: World, caller: str | None,
                                                                      path: str) -> None:
    unknown = str(uuid.uuid4())
    before = len(world.outbox())

    refused = world.get(caller, path, unknown)
    answers = {hidden: world.get(caller, path, hidden) for hidden in world.hidden_transactions(caller)}

    assert is_problem(refused, 410) and refused.json()["type"].endswith("unknown-cursor")
    assert answers and all(same_answer(a, refused, hidden, unknown) for hidden, a in answers.items())
    visible = [g for g in world.outbox() if g in world.visible[caller]]
    assert all(world.get(caller, path, g).status_code == 200 for g in visible)  # a gid it may see pages on
    assert len(world.outbox()) == before


@pytest.mark.parametrize("caller", [None, P, Q], ids=["anonymous", "peer-P", "peer-Q"])
def test_fetching_hidden_gids_answers_like_fetching_unknown_ones(world: World, caller: str | None) -> None:
    hidden = world.hidden_transactions(caller)
    unknown = [str(uuid.uuid4()) for _ in hidden]
    visible = [g for g in world.outbox() if g in world.visible[caller]]

    for ancestors in (False, True):
        with_hidden = world.fetch(caller, [*hidden, *visible], ancestors)
        with_unknown = world.fetch(caller, [*unknown, *visible], ancestors)

        assert with_hidden.status_code == with_unknown.status_code == 200
        assert with_hidden.json() == with_unknown.json()
        assert not [g for g in world.hidden(caller) if g in with_hidden.text]


def test_hidden_transactions_do_not_crowd_visible_ones_out_of_a_fetch(world: World) -> None:
    # A fetch answers at most 8 MiB, oldest first. Cut before the visibility check, nine
    # hidden 1 MB transactions named with a visible one left it out: a size oracle.
    ann = author(world.node.name)
    big = [world.node.app.create_item(author=ann, title=f"big {i}", markdown="x" * 999_000 + "\n", scope="OWNER")
           for i in range(9)]
    late = world.node.app.create_item(author=ann, title="late", markdown="v\n", scope="PUBLIC")

    with_hidden = world.fetch(None, [r.gid for r in big] + [late.gid])
    with_unknown = world.fetch(None, [str(uuid.uuid4()) for _ in big] + [late.gid])

    assert [tx["gid"] for tx in with_hidden.json()["transactions"]] == [late.gid]
    assert with_hidden.json() == with_unknown.json()


def test_a_tampered_or_forged_cursor_is_refused_and_changes_nothing(world: World) -> None:
    cursor = world.get(P, "/federation/outbox/gids").json()["last"]
    middle = len(cursor) // 2
    flipped = cursor[:middle] + ("A" if cursor[middle] != "A" else "B") + cursor[middle + 1:]
    forged = [flipped, cursor[:-4], cursor + "AAAA", "c1." + "A" * (len(cursor) - 3), cursor.upper()]
    before = len(world.outbox())

    assert world.get(P, "/federation/outbox", cursor).status_code == 200  # the cursor as given works
    for bad in forged:
        for path in ENDPOINTS:
            answer = world.get(P, path, bad)
            assert 400 <= answer.status_code < 500, (bad, answer.text)
            assert is_problem(answer, answer.status_code) and "cursor" in answer.json()["detail"].lower()
    assert cursor not in world.every
    assert len(world.outbox()) == before


def test_one_callers_cursor_is_refused_to_every_other_caller(world: World) -> None:
    # P's cursor stands after the share only P may see (or after the secret): it is P's alone.
    cursor = world.get(P, "/federation/outbox").json()["last"]
    unknown = str(uuid.uuid4())

    mine = world.get(P, "/federation/outbox", cursor)
    others = {caller: world.get(caller, "/federation/outbox", cursor) for caller in (Q, None)}

    assert mine.status_code == 200
    for caller, answer in others.items():
        assert is_problem(answer, 410), answer.text
        assert answer.json()["type"] == world.get(caller, "/federation/outbox", unknown).json()["type"]


@pytest.fixture
def spawn(store: Callable[[], str | None], tmp_path: Path) -> Iterator[Spawner]:
    """Real ``fedsync serve`` processes on the test's store; stopped after the test."""
    spawner = Spawner(store, tmp_path)
    yield spawner
    spawner.close()


def pulled(node: NodeProcess, source: NodeProcess) -> Any:
    admin = node.admin()
    try:
        return admin.syncer.pull(source.name)
    finally:
        admin.close()


def test_a_peer_pulls_past_hidden_entries_with_an_opaque_cursor_and_converges(spawn: Spawner) -> None:
    a, b = spawn.many("a", "b")
    link(a, b)
    admin = a.admin()
    ann = author(a.name)
    try:
        shown = [admin.app.create_item(author=ann, title=f"n{i}", markdown="n\n").gid for i in range(3)]
        hidden = [admin.app.create_item(author=ann, title=f"o{i}", markdown="o\n", scope="OWNER").gid
                  for i in range(3)]
    finally:
        admin.close()
    a_gids = {r["gid"] for r in a.query("SELECT gid FROM transactions")}

    first = pulled(b, a)
    cursor = b.query("SELECT pull_cursor FROM peers WHERE name = ?", (a.name,))[0]["pull_cursor"]
    admin = a.admin()
    try:
        later = admin.app.create_item(author=ann, title="later", markdown="l\n").gid
    finally:
        admin.close()
    second = pulled(b, a)
    b_gids = {r["gid"] for r in b.query("SELECT gid FROM transactions")}

    assert cursor and cursor not in a_gids
    assert not first.gap_filled and not second.gap_filled and second.stored == 1
    assert set(shown) | {later} <= b_gids and not set(hidden) & b_gids

    # A cursor that an older node handed out (a hidden gid) is unknown now: the puller
    # lists gids instead, converges, and keeps an opaque cursor from then on.
    admin = b.admin()
    try:
        admin.peers.set_pull_cursor(a.name, hidden[-1])
    finally:
        admin.close()
    third = pulled(b, a)
    cursor = b.query("SELECT pull_cursor FROM peers WHERE name = ?", (a.name,))[0]["pull_cursor"]
    assert third.gap_filled and cursor not in a_gids
    assert {r["gid"] for r in b.query("SELECT gid FROM transactions")} == b_gids


@pytest.mark.parametrize("last", [None, str(uuid.uuid4()), "c1." + "A" * 70], ids=["none", "gid", "sealed"])
def test_the_puller_keeps_any_well_formed_cursor_a_peer_gives(last: str | None) -> None:
    client = _client_answering({"gids": [], "more": False, "last": last})

    assert client.gids(P, "https://p.example.net", None)["last"] == last


@pytest.mark.parametrize("last", ["x" * 10_000, "a b", "../../x", 42, ["a"]],
                         ids=["huge", "space", "path", "number", "list"])
def test_the_puller_refuses_a_cursor_no_node_would_give(last: Any) -> None:
    client = _client_answering({"transactions": [], "more": True, "last": last})

    with pytest.raises(PeerError, match="cursor"):
        client.outbox(P, "https://p.example.net", None)


def _client_answering(page: dict[str, Any]) -> FederationClient:
    """A federation client whose peer answers every request with ``page`` (a fake at the HTTP port)."""
    return FederationClient(lambda peer: "token",
                            transport=httpx.MockTransport(lambda request: httpx.Response(200, json=page)))
