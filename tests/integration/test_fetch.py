"""transactions:fetch answers are bounded in bytes as well as in count (both stores)."""

from __future__ import annotations

import pytest

from infrastructure import outbox as federation

AUTHOR_NAME = "ann"


@pytest.mark.parametrize("cap_kib", [64, 10_000])
def test_a_fetch_with_ancestors_answers_the_oldest_transactions_up_to_the_byte_cap(node, monkeypatch, cap_kib):
    monkeypatch.setattr(federation, "FETCH_BYTES", cap_kib * 1024)
    author = f"{AUTHOR_NAME}@{node.name}"
    big = "x" * 10_000 + "\n"
    created = node.app.create_item(author=author, title="t", markdown=big, scope="PUBLIC")
    heads = [created.gid]
    for i in range(29):
        heads.append(node.app.edit_item(created.entity_gid, parent=heads[-1], author=author,
                                        markdown=f"{i}{big}").gid)

    answer = node.federation.fetch(None, [heads[-1]], ancestors=True)

    gids = [tx["gid"] for tx in answer]
    if cap_kib == 64:  # about 10 KB each: the oldest five or six, in order
        assert 4 <= len(gids) <= 6
        assert gids == heads[:len(gids)]
    else:
        assert gids == heads
