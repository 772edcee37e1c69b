"""A conflict across three real node processes (A - hub - C) over HTTP, on both stores.

A and C edit the same head of an item concurrently through their own REST
APIs, sync through the hub by pull, and every node reports the same conflict;
a merge editor on the hub resolves it and, after another sync, every node
has the merged document and no conflict.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from infrastructure.local_cluster import NodeProcess
from tests.e2e.conftest import Spawner, link
from tests.e2e.test_federation import pull

BASE_MARKDOWN = "# Field trip\n\nintro\n\nbody\n\noutro\n"


@contextmanager
def editor(node: NodeProcess, name: str, role: str = "editor") -> Iterator[httpx.Client]:
    """An HTTP client on the node's REST API with a token for ``name``."""
    token = node.token(name, role=role)
    with httpx.Client(base_url=node.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0) as client:
        yield client


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()


def test_concurrent_edits_on_two_nodes_give_one_conflict_everywhere_resolved_on_the_hub(
        spawn: Spawner) -> None:
    a, hub, c = spawn.many("a", "hub", "c")
    link(a, hub)
    link(hub, c)
    with editor(a, "ann") as ann, editor(c, "cy") as cy, editor(hub, "mia", role="merge") as mia:
        kept, dropped = (ok(ann.post("/tags", json={"name": name}), 201)["gid"] for name in ("kept", "dropped"))
        item = ok(ann.post("/items", json={"title": "Field trip", "markdown": BASE_MARKDOWN, "tags": [dropped]}), 201)
        pull(hub, a)
        pull(c, hub)
        head = {"If-Match": f'"{item["head"]}"'}
        ok(ann.patch(f"/items/{item['gid']}", headers=head,
                     json={"markdown": "# Field trip\n\nintro by ann\n\nbody: museum\n\noutro\n",
                           "tags": [dropped, kept]}))
        ok(cy.patch(f"/items/{item['gid']}", headers=head,
                    json={"markdown": "# Field trip\n\nintro\n\nbody: zoo\n\noutro by cy\n", "tags": []}))

        for node, source in ((hub, a), (hub, c), (a, hub), (c, hub)):
            pull(node, source)
        reviews = [ok(client.get(f"/conflicts/{item['gid']}")) for client in (ann, mia, cy)]
        listed = [ok(client.get("/conflicts"))["conflicts"] for client in (ann, mia, cy)]
        resolved = BASE_MARKDOWN.replace("intro", "intro by ann").replace("body", "body: museum, then the zoo") \
            .replace("outro", "outro by cy")
        document = reviews[1]["proposal"]["document"] | {"markdown": resolved}
        heads = [h["gid"] for h in reviews[1]["heads"]]
        merge = ok(mia.post(f"/conflicts/{item['gid']}/resolve", json={"heads": heads, "document": document}), 201)
        pull(a, hub)
        pull(c, hub)
        after = [(ok(client.get("/conflicts"))["conflicts"], ok(client.get(f"/items/{item['gid']}")))
                 for client in (ann, mia, cy)]

    assert reviews[0] == reviews[1] == reviews[2]
    review = reviews[0]
    assert review["base"]["gid"] == item["head"] and len(review["heads"]) == 2
    assert {h["origin"] for h in review["heads"]} == {a.name, c.name}
    markdown = review["proposal"]["fields"]["markdown"]
    assert markdown["needs_human"] and "intro by ann" in markdown["value"] and "outro by cy" in markdown["value"]
    assert "<<<<<<< ann@" in markdown["value"] and ">>>>>>> cy@" in markdown["value"]
    assert review["proposal"]["fields"]["tags"]["value"] == [kept]  # added by ann, removed by cy
    assert listed[0] == listed[1] == listed[2] and [e["item"] for e in listed[0]] == [item["gid"]]
    for conflicts, state in after:
        assert conflicts == []
        assert state["heads"] == [merge["transaction"]]
        assert {k: state[k] for k in ("title", "markdown", "deleted")} == {k: document[k] for k in
                                                                            ("title", "markdown", "deleted")}
        assert [t["gid"] for t in state["tags"]] == document["tags"] == [kept]
