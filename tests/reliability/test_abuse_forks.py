"""Abuse: no answer names an item the caller may not see through ``forked_from`` (issue 12, finding 8).

A fork of an OWNER item may be NETWORK: every editor sees the fork, only
the source's author sees the source. Every answer that carries the fork's
state (the item, one version, the conflict review and the resolution) leaves
the source out of ``forked_from`` for the others, as lineage does; what is
stored keeps it, and a merge editor who could not name it does not drop it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from infrastructure.node import Node
from tests.api.conftest import Api
from tests.factory import SigningPeer, trust


@pytest.fixture
def api(node: Node) -> Iterator[Api]:
    client = Api(node)
    yield client
    client.client.close()


def fork_of_a_hidden_item(api: Api) -> tuple[str, dict[str, Any]]:
    """ann's OWNER item and ann's NETWORK fork of it (the fork's answer)."""
    ann = api.auth("ann")
    source = api.create(ann, title="private source", scope="OWNER")
    forked = api.post(f"/items/{source['gid']}/forks", json={"title": "public fork", "scope": "NETWORK"},
                      headers=ann)
    assert forked.status_code == 201, forked.text
    return source["gid"], forked.json()


def split(api: Api, fork: dict[str, Any]) -> list[str]:
    """Give the fork two heads: an edit here and a concurrent edit from another node."""
    remote = SigningPeer()
    trust(api.node, remote)
    created = api.node.app.transaction(fork["head"])
    local = api.edit(api.auth("ann"), fork, markdown="edited here\n")
    theirs = remote.edit(created, markdown="edited there\n")
    assert [o.status for o in api.node.app.receive([theirs])] == ["stored"]
    return sorted([local["head"], theirs["gid"]])


def test_a_version_of_a_fork_does_not_name_a_source_the_caller_may_not_see(api: Api) -> None:
    source, fork = fork_of_a_hidden_item(api)

    for_bob = api.get(f"/items/{fork['gid']}/versions/{fork['head']}", headers=api.auth("bob"))
    for_ann = api.get(f"/items/{fork['gid']}/versions/{fork['head']}", headers=api.auth("ann"))

    assert for_bob.status_code == 200 and for_bob.json()["payload"]["forked_from"] == []
    assert source not in for_bob.text
    assert for_ann.json()["payload"]["forked_from"] == [source]
    assert api.get(f"/items/{fork['gid']}", headers=api.auth("bob")).json()["forked_from"] == []


def test_a_conflict_review_does_not_name_a_source_the_caller_may_not_see(api: Api) -> None:
    source, fork = fork_of_a_hidden_item(api)
    split(api, fork)

    for_bob = api.get(f"/conflicts/{fork['gid']}", headers=api.auth("bob"))
    for_ann = api.get(f"/conflicts/{fork['gid']}", headers=api.auth("ann"))

    assert for_bob.status_code == 200, for_bob.text
    assert source not in for_bob.text
    assert for_bob.json()["proposal"]["document"]["forked_from"] == []
    assert for_ann.json()["proposal"]["document"]["forked_from"] == [source]
    assert all(head["state"]["forked_from"] == [source] for head in for_ann.json()["heads"])


def test_resolving_keeps_the_sources_the_merge_editor_could_not_see_and_does_not_show_them(api: Api) -> None:
    source, fork = fork_of_a_hidden_item(api)
    heads = split(api, fork)
    mia = api.auth("mia", role="merge")
    proposal = api.get(f"/conflicts/{fork['gid']}", headers=mia).json()["proposal"]["document"]
    document = {**proposal, "markdown": "merged\n"}

    resolved = api.post(f"/conflicts/{fork['gid']}/resolve", json={"heads": heads, "document": document},
                        headers=mia)

    assert resolved.status_code == 201, resolved.text
    assert source not in resolved.text
    assert api.node.app.transaction(resolved.json()["transaction"])["payload"]["forked_from"] == [source]
    assert api.get(f"/items/{fork['gid']}", headers=api.auth("ann")).json()["forked_from"] == [source]
