"""Received batches far larger than one database round trip should carry (both stores)."""

from __future__ import annotations


def test_a_batch_of_eight_megabytes_is_stored_and_projected(node, peer):
    big = "line of a long document\n" * 30_000  # ~720 KB
    created = peer.create_item(markdown=big)
    edits = [created]
    for i in range(11):
        edits.append(peer.edit(edits[-1], markdown=f"{i}\n{big}"))

    outcomes = node.app.receive(edits, sender=peer.name)

    assert [o.status for o in outcomes] == ["stored"] * 12
    with node.db.read() as cur:
        row = cur.execute("SELECT markdown, head FROM documents").fetchone()
    assert row["head"] == edits[-1]["gid"] and row["markdown"].startswith("10\n")
    assert node.app.sequence_of(edits[-1]["gid"]) > node.app.sequence_of(created["gid"])
