"""Shares that work, over three real node processes (A - hub - C, A and C not peered), on both stores.

A shares an OWNER item with C's team ``maths`` for edit: C's maths editor sees and edits it, C's
other editors and the hub's editors get 404; the edit reaches A through the hub; concurrent edits
on A and C give the same conflict on both; A's merge converges on both; a read share refuses
edits with 403 until A changes it to edit; C asks A to share the item with a fourth node D, and
A's policy grants it; a revoke stops further delivery.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import httpx
import pytest

from infrastructure.local_cluster import NodeProcess
from tests.e2e.conftest import Spawner, peer
from tests.e2e.test_conflicts_e2e import ok
from tests.e2e.test_federation import pull
from tests.e2e.test_keys import cli

TEXT = "# Plan\n\nintro\n\nbody\n\noutro\n"


@contextmanager
def editor(node: NodeProcess, name: str, team: str | None = None, role: str = "editor") -> Iterator[httpx.Client]:
    token = node.token(name, role=role, team=team)
    with httpx.Client(base_url=node.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0) as client:
        yield client


def a_to_c(a: NodeProcess, hub: NodeProcess, c: NodeProcess) -> None:
    pull(hub, a)
    pull(c, hub)


def c_to_a(a: NodeProcess, hub: NodeProcess, c: NodeProcess) -> None:
    pull(hub, c)
    pull(a, hub)


def gids(node: NodeProcess, item: str) -> set[str]:
    return {r["gid"] for r in node.query("SELECT gid FROM transactions WHERE entity_gid = ?", (item,))}


@pytest.mark.slow
def test_an_owner_item_shared_with_a_team_two_nodes_away_is_edited_merged_and_revoked(spawn: Spawner) -> None:
    a, hub, c, d = spawn.many("a", "hub", "c", "d")
    for platform in (a, c, d):  # the platforms route through the hub; the hub takes no one's word on keys
        peer(platform, hub, relay=True)
        peer(hub, platform, relay=False)
    with ExitStack() as stack:
        ann = stack.enter_context(editor(a, "ann", role="merge"))  # an OWNER item: its author merges
        max_ = stack.enter_context(editor(c, "max", team="maths"))
        phil = stack.enter_context(editor(c, "phil", team="physics"))
        hugo = stack.enter_context(editor(hub, "hugo"))
        dora = stack.enter_context(editor(d, "dora"))
        item = ok(ann.post("/items", json={"title": "Plan", "markdown": TEXT, "scope": "OWNER"}), 201)
        gid = item["gid"]
        # A has not heard of C yet (no peering, no keys): the share says it knows.
        share = ok(ann.post(f"/items/{gid}/shares", json={"peer": c.name, "permission": "edit", "team": "maths",
                                                           "allow_unknown": True}), 201)
        a_to_c(a, hub, c)

        # Who sees it: C's maths editor only; the hub stores it for C but shows it to nobody.
        seen = ok(max_.get(f"/items/{gid}"))
        assert seen["markdown"] == TEXT and seen["scope"] == "OWNER"
        assert [i["gid"] for i in ok(max_.get("/items"))["items"]] == [gid]
        assert phil.get(f"/items/{gid}").status_code == 404 and ok(phil.get("/items"))["items"] == []
        assert hub.query("SELECT item_gid FROM documents") == [{"item_gid": gid}]
        assert hugo.get(f"/items/{gid}").status_code == 404 and ok(hugo.get("/items"))["items"] == []
        assert phil.patch(f"/items/{gid}", headers={"If-Match": f'"{seen["head"]}"'},
                          json={"markdown": "no\n"}).status_code == 404

        # C's edit reaches A through the hub.
        edited = ok(max_.patch(f"/items/{gid}", headers={"If-Match": f'"{seen["head"]}"'},
                               json={"markdown": TEXT.replace("body", "body by max")}))
        c_to_a(a, hub, c)
        assert ok(ann.get(f"/items/{gid}"))["markdown"] == TEXT.replace("body", "body by max")

        # Concurrent edits: the same conflict on A and C; A's merge converges on both.
        head = {"If-Match": f'"{edited["head"]}"'}
        ok(ann.patch(f"/items/{gid}", headers=head, json={"markdown": edited["markdown"].replace("intro", "intro A")}))
        ok(max_.patch(f"/items/{gid}", headers=head, json={"markdown": edited["markdown"].replace("outro", "outro C")}))
        a_to_c(a, hub, c)
        c_to_a(a, hub, c)
        reviews = [ok(client.get(f"/conflicts/{gid}")) for client in (ann, max_)]
        assert reviews[0]["heads"] == reviews[1]["heads"] and len(reviews[0]["heads"]) == 2
        heads = [h["gid"] for h in reviews[0]["heads"]]
        merged_text = TEXT.replace("body", "body by max").replace("intro", "intro A").replace("outro", "outro C")
        merge = ok(ann.post(f"/conflicts/{gid}/resolve",
                            json={"heads": heads, "document": reviews[0]["proposal"]["document"]
                                  | {"markdown": merged_text}}), 201)
        a_to_c(a, hub, c)
        for client in (ann, max_):
            state = ok(client.get(f"/items/{gid}"))
            assert state["heads"] == [merge["transaction"]] and state["markdown"] == merged_text
            assert ok(client.get("/conflicts"))["conflicts"] == []

        # A read share refuses edits (403) until A changes it to edit.
        other = ok(ann.post("/items", json={"title": "Read me", "markdown": "read\n", "scope": "OWNER"}), 201)
        read = ok(ann.post(f"/items/{other['gid']}/shares", json={"peer": c.name, "permission": "read"}), 201)
        a_to_c(a, hub, c)
        seen_by_phil = ok(phil.get(f"/items/{other['gid']}"))  # no team named: every editor of C
        refused = phil.patch(f"/items/{other['gid']}", headers={"If-Match": f'"{seen_by_phil["head"]}"'},
                             json={"markdown": "mine\n"})
        assert refused.status_code == 403 and "edit share" in refused.json()["detail"]
        ok(ann.patch(f"/items/{other['gid']}/shares/{read['gid']}", json={"permission": "edit"}))
        a_to_c(a, hub, c)
        ok(phil.patch(f"/items/{other['gid']}", headers={"If-Match": f'"{seen_by_phil["head"]}"'},
                      json={"markdown": "now mine too\n"}))
        c_to_a(a, hub, c)
        assert ok(ann.get(f"/items/{other['gid']}"))["markdown"] == "now mine too\n"

        # C (holding an edit share) asks A to share the item with D; A's policy (edit-holders) grants it.
        asked = ok(max_.post(f"/items/{gid}/shares/requests", json={"peer": d.name, "permission": "read"}), 201)
        assert asked["requested"] and asked["peer"] == d.name
        assert phil.post(f"/items/{gid}/shares/requests", json={"peer": d.name, "permission": "read"}).status_code \
            == 404  # C's physics editor does not even see the item
        assert dora.get(f"/items/{gid}").status_code == 404
        c_to_a(a, hub, c)
        granted = [s for s in ok(ann.get(f"/items/{gid}/shares"))["shares"] if s["peer"] == d.name]
        assert [(s["requested"], s["permission"]) for s in granted] == [(True, "read"), (False, "read")]
        pull(hub, a)
        pull(d, hub)
        assert ok(dora.get(f"/items/{gid}"))["markdown"] == merged_text

        # A revoke stops further delivery, and C's editors stop seeing the item.
        ok(ann.delete(f"/items/{gid}/shares/{share['gid']}"))
        a_to_c(a, hub, c)
        after = ok(ann.patch(f"/items/{gid}", headers={"If-Match": f'"{merge["transaction"]}"'},
                             json={"markdown": "after the revoke\n"}))
        a_to_c(a, hub, c)
        pull(d, hub)
        assert max_.get(f"/items/{gid}").status_code == 404
        assert after["head"] not in gids(c, gid)  # C's share is revoked; D's is live: the hub carries it to D
        assert after["head"] in gids(d, gid) and ok(dora.get(f"/items/{gid}"))["markdown"] == "after the revoke\n"


def test_reshare_requests_wait_for_the_admin_under_the_admin_policy_and_need_an_edit_share(spawn: Spawner) -> None:
    a, c = spawn.many("a", "c")
    assert "reshare policy: admin" in cli(a, "share-requests", "policy", "admin").stdout
    peer(a, c)
    peer(c, a)
    third = "urn:domain:d.example.org"
    with editor(a, "ann") as ann, editor(c, "cy") as cy:
        item = ok(ann.post("/items", json={"title": "Plan", "markdown": TEXT, "scope": "OWNER"}), 201)
        read = ok(ann.post(f"/items/{item['gid']}/shares", json={"peer": c.name, "permission": "read"}), 201)
        pull(c, a)
        refused = cy.post(f"/items/{item['gid']}/shares/requests", json={"peer": third, "permission": "read"})
        assert refused.status_code == 403 and "needs an edit share" in refused.json()["detail"]
        ok(ann.patch(f"/items/{item['gid']}/shares/{read['gid']}", json={"permission": "edit"}))
        pull(c, a)
        first = ok(cy.post(f"/items/{item['gid']}/shares/requests", json={"peer": third, "permission": "edit"}), 201)
        second = ok(cy.post(f"/items/{item['gid']}/shares/requests", json={"peer": third, "permission": "read"}),
                    201)
        pull(a, c)

        waiting = cli(a, "share-requests")
        assert first["gid"] in waiting.stdout and second["gid"] in waiting.stdout, waiting.stdout
        assert [s["peer"] for s in ok(ann.get(f"/items/{item['gid']}/shares"))["shares"]
                if not s["requested"]] == [c.name]  # nothing granted yet
        assert cli(a, "share-requests", "grant", first["gid"]).returncode == 0
        assert cli(a, "share-requests", "refuse", second["gid"]).returncode == 0
        assert cli(a, "share-requests", "grant", second["gid"]).returncode == 1  # answered already

    shares = {(s["peer"], s["permission"], s["requested"]) for s in
              ok(httpx.get(f"{a.base_url}/items/{item['gid']}/shares", headers=_auth(a, "ann")))["shares"]}
    assert (third, "edit", False) in shares and (third, "read", False) not in shares
    answered = cli(a, "share-requests", "--all").stdout
    assert "granted" in answered and "refused" in answered


def _auth(node: NodeProcess, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {node.token(name)}"}
