"""Who may change what, between real node processes (both stores): a hostile peer signs whatever it
likes with its own key and delivers it to the inbox of the node it attacks.

Each test is one attack of issue 11 that today's rules refuse: post-dated widening, deletion and
share-holder widening of another node's item, squatting a gid in both arrival orders, and writing
under another node's author.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from domain.errors import Forbidden
from domain.transaction import checksum, owned_entity_gid, signing_input
from infrastructure.local_cluster import NodeProcess
from tests import factory
from tests.e2e.conftest import Spawner, link
from tests.e2e.test_federation import outbox
from tests.e2e.test_federation_guards import deliver

Trio = tuple[NodeProcess, NodeProcess, NodeProcess]


@pytest.fixture(scope="module")
def trio(module_spawn: Spawner) -> Trio:
    """a (the owner), b (the hostile peer) and c, each peered with the others."""
    a, b, c = module_spawn.many("a", "b", "c")
    link(a, b)
    link(a, c)
    link(b, c)
    return a, b, c


def forge(node: NodeProcess, base: dict | None = None, **fields) -> dict:
    """A transaction signed with ``node``'s own key: what a hostile peer can make."""
    admin = node.admin()
    try:
        tx = {"gid": str(uuid.uuid4()), "origin": admin.name, "author": f"mallory@{admin.name}",
              "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "scope": "NETWORK"}
        if base is not None:
            tx.update(entity=base["entity"], entity_gid=base["entity_gid"], kind="item.edited",
                      parents=[base["gid"]], scope=base["scope"], payload=dict(base["payload"]))
        tx.update(fields)
        tx["checksum"] = checksum(tx["payload"])
        tx["signature"] = admin.keyring.active.sign(signing_input(tx))
        return tx
    finally:
        admin.close()


def made_on(node: NodeProcess, scope: str = "NETWORK", **kw) -> dict:
    admin = node.admin()
    try:
        receipt = admin.app.create_item(author=factory.author(admin.name), title="mine", markdown="one\n",
                                        scope=scope, **kw)
        return admin.app.transaction(receipt.gid)
    finally:
        admin.close()


def document(node: NodeProcess, entity_gid: str) -> dict:
    row = node.query("SELECT scope, deleted, markdown FROM documents WHERE item_gid = ?", (entity_gid,))[0]
    return dict(row, deleted=bool(row["deleted"]))


def test_a_peer_cannot_widen_post_date_or_delete_another_nodes_item(trio):
    a, b, _ = trio
    base = made_on(a)
    later = (datetime.now(UTC) + timedelta(seconds=290)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    widened = forge(b, base, scope="PUBLIC", created_at=later, payload=dict(base["payload"], markdown="mine now\n"))
    deleted = forge(b, base, kind="item.deleted", payload=dict(base["payload"], deleted=True))
    hidden_delete = forge(b, base, payload=dict(base["payload"], deleted=True))
    before = len(outbox(a))

    results = deliver(b, a, [widened, deleted, hidden_delete])

    assert [r["status"] for r in results] == ["refused"] * 3
    assert "only its owner changes its scope (NETWORK -> PUBLIC)" in results[0]["reason"]
    assert "only its owner can make item.deleted" in results[1]["reason"]
    assert "only its owner deletes it" in results[2]["reason"]
    assert len(outbox(a)) == before
    assert document(a, base["entity_gid"]) == {"scope": "NETWORK", "deleted": False, "markdown": "one\n"}


def test_a_peer_may_edit_the_content_of_a_network_item_keeping_its_scope(trio):
    a, b, _ = trio
    base = made_on(a)

    edit = forge(b, base, payload=dict(base["payload"], markdown="national editor's version\n"))

    assert [r["status"] for r in deliver(b, a, [edit])] == ["stored"]
    assert document(a, base["entity_gid"])["markdown"] == "national editor's version\n"


def in_a_day(node: NodeProcess, gid: str, entity_gid: str, **kw) -> dict:
    """The owner's next change of its item (through its own application)."""
    admin = node.admin()
    try:
        author = factory.author(admin.name)
        if kw.pop("delete", False):
            receipt = admin.app.delete_item(entity_gid, parent=gid, author=author)
        else:
            receipt = admin.app.edit_item(entity_gid, parent=gid, author=author, **kw)
        return admin.app.transaction(receipt.gid)
    finally:
        admin.close()


def anonymous_gids(node: NodeProcess) -> set[str]:
    page = httpx.get(f"{node.base_url}/federation/outbox", params={"limit": 1000}, timeout=10).json()
    return {tx["gid"] for tx in page["transactions"]}


def test_an_edit_of_an_old_wider_head_cannot_undo_what_the_owner_did_since(trio):
    """The owner narrowed a PUBLIC item to OWNER (and wrote a secret), or deleted it; a peer that saw the old
    head edits it, keeping its scope as the rules ask, post-dated to become the current head. The item stays
    as private as its most private head and deleted while any head is: nothing of it is served anonymously."""
    a, b, _ = trio
    base = made_on(a, scope="PUBLIC")
    secret = in_a_day(a, base["gid"], base["entity_gid"], scope="OWNER", markdown="the secret\n")
    later = (datetime.now(UTC) + timedelta(seconds=290)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    old_head = forge(b, base, created_at=later, payload=dict(base["payload"], markdown="public again?\n"))

    assert [r["status"] for r in deliver(b, a, [old_head])] == ["stored"]  # a legal edit of a PUBLIC head
    assert document(a, base["entity_gid"]) == {"scope": "OWNER", "deleted": False, "markdown": "public again?\n"}
    assert not {base["gid"], secret["gid"], old_head["gid"]} & anonymous_gids(a)
    admin_a = a.admin()
    try:  # the owner's merge keeps the narrowest scope unless it names one
        merged = admin_a.app.merge_item(base["entity_gid"], heads=[secret["gid"], old_head["gid"]],
                                        author=factory.author(admin_a.name), document={"markdown": "merged\n"})
        assert admin_a.app.transaction(merged.gid)["scope"] == "OWNER"
    finally:
        admin_a.close()

    gone = made_on(a, scope="NETWORK")
    in_a_day(a, gone["gid"], gone["entity_gid"], delete=True)
    revived = forge(b, gone, created_at=later, payload=dict(gone["payload"], markdown="back\n"))

    assert [r["status"] for r in deliver(b, a, [revived])] == ["stored"]
    assert document(a, gone["entity_gid"])["deleted"] is True


def test_a_share_holder_can_neither_widen_nor_edit_an_owner_item(trio):
    a, b, _ = trio
    base = made_on(a, scope="OWNER")
    admin_a = a.admin()
    share = admin_a.app.grant_share(author=factory.author(admin_a.name), item_gid=base["entity_gid"],
                                    peer=b.name, permission="read")
    grant = admin_a.app.transaction(share.gid)
    admin_a.close()
    assert [r["status"] for r in deliver(a, b, [base, grant])] == ["stored", "stored"]

    admin_b = b.admin()  # an unmodified node: its own admin tries through the application
    try:
        with pytest.raises(Forbidden, match="OWNER: only its owner or a node holding an edit share"):
            admin_b.app.edit_item(base["entity_gid"], parent=base["gid"], author=factory.author(admin_b.name),
                                  scope="PUBLIC")
    finally:
        admin_b.close()
    widened = forge(b, base, scope="PUBLIC")
    results = deliver(b, a, [widened])

    assert results[0]["status"] == "refused" and "a node holding an edit share" in results[0]["reason"]
    assert document(a, base["entity_gid"])["scope"] == "OWNER"


@pytest.mark.parametrize("squat_first", [True, False], ids=["squat-first", "owner-first"])
def test_nobody_can_create_an_entity_under_a_gid_its_owner_minted(trio, squat_first):
    a, b, c = trio
    real = made_on(a)
    squat = forge(b, entity="item", entity_gid=real["entity_gid"], kind="item.created", parents=[],
                  payload=dict(real["payload"], markdown="squatter\n"))
    assert squat["entity_gid"] != owned_entity_gid(squat["origin"], squat["gid"])

    if squat_first:
        squatted, owned = deliver(b, c, [squat])[0], deliver(a, c, [real])[0]
    else:
        owned, squatted = deliver(a, c, [real])[0], deliver(b, c, [squat])[0]

    assert squatted["status"] == "refused" and "owned_entity_gid(origin, gid)" in squatted["reason"]
    assert owned["status"] == "stored"
    assert document(c, real["entity_gid"])["markdown"] == "one\n"


def test_a_peer_cannot_write_as_another_nodes_editor(trio):
    a, b, c = trio
    admin_a = a.admin()
    ann = factory.author(admin_a.name)
    admin_a.close()
    gid = str(uuid.uuid4())
    payload = factory.document("by ann?", "no\n")
    foreign = forge(b, gid=gid, entity="item", entity_gid=owned_entity_gid(b.name, gid), kind="item.created",
                    parents=[], author=ann, scope="TEAM", payload=payload)
    before = len(outbox(c))

    result = deliver(b, c, [foreign])[0]

    assert result["status"] == "refused" and "is not an editor of the origin" in result["reason"]
    assert len(outbox(c)) == before


def test_a_url_cannot_claim_a_name_nor_re_point_an_existing_peer(spawn: Spawner):
    a, c = spawn.many("a", "c")
    b = spawn("b", host="b.example.org")  # named b.example.org, served on 127.0.0.1
    admin = a.admin()
    try:
        with pytest.raises(ValueError, match="not the name of its host"):
            admin.add_peer(b.base_url, ("item",), ("item",))
        with pytest.raises(ValueError, match=f"says it is {c.name}, not {b.name}"):
            admin.add_peer(c.base_url, ("item",), ("item",), name=b.name)
        admin.add_peer(c.base_url, ("item",), ("item",))  # its name is its URL's host
        admin.add_peer(b.base_url, ("item",), ("item",), name=b.name)  # the admin vouches for the name
        moved = b.base_url.replace("127.0.0.1", "localhost")
        with pytest.raises(ValueError, match="is already a peer at"):
            admin.add_peer(moved, ("item",), ("item",), name=b.name)
        assert admin.peers.get(b.name).base_url == b.base_url
    finally:
        admin.close()


def test_an_owner_restricts_a_network_item_to_its_own_edits_and_lifts_that(trio):
    a, b, _ = trio
    base = made_on(a)
    restricted = in_a_day(a, base["gid"], base["entity_gid"], owner_edits_only=True)
    assert restricted["payload"]["owner_edits_only"] is True and restricted["scope"] == "NETWORK"
    assert [r["status"] for r in deliver(a, b, [base, restricted])] == ["stored", "stored"]

    edit = forge(b, restricted, payload=dict(restricted["payload"], markdown="mine\n"))
    lifting = forge(b, restricted, payload={k: v for k, v in restricted["payload"].items() if k != "owner_edits_only"})
    on_the_old_head = forge(b, base, payload=dict(base["payload"], markdown="branching around it\n"))
    results = deliver(b, a, [edit, lifting, on_the_old_head])

    assert [r["status"] for r in results] == ["refused", "refused", "stored"]
    assert "its owner edits it alone" in results[0]["reason"]
    assert "only its owner restricts its edits" in results[1]["reason"]
    admin_b = b.admin()
    try:  # an unmodified node's own editors get the same answer
        with pytest.raises(Forbidden, match="its owner edits it alone"):
            admin_b.app.edit_item(base["entity_gid"], parent=restricted["gid"], author=factory.author(admin_b.name),
                                  markdown="mine\n")
    finally:
        admin_b.close()

    lifted = in_a_day(a, restricted["gid"], base["entity_gid"], owner_edits_only=False)
    assert "owner_edits_only" not in lifted["payload"]
    deliver(a, b, [lifted])
    assert deliver(b, a, [forge(b, lifted, payload=dict(lifted["payload"], markdown="ok now\n"))])[0]["status"] \
        == "stored"
