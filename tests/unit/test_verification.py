"""Received batches verified on several threads: the same outcomes, in batch order, as one thread."""

from __future__ import annotations

import threading
from typing import Any

from domain import receiving
from domain.errors import DomainError
from infrastructure.signing import KeySet
from infrastructure.verification import MIN_PART, ParallelVerify, verify_workers
from tests.factory import SigningPeer, history

NOW = "2026-06-01T00:00:00.000000Z"


def batch_with_faults(peer: SigningPeer, size: int) -> list[Any]:
    """``size`` signed transactions of one peer, some tampered with or broken at positions in every part."""
    txs: list[Any] = history(peer, items=size // 4 + 1, edits=3)[:size]
    for i in range(5, size, 37):
        txs[i] = dict(txs[i], scope="OWNER")  # the signature no longer matches
    txs[size - 1] = "junk"
    return txs


def recording_verifier(peer: SigningPeer) -> tuple[receiving.Verify, set[str]]:
    """A verifier of the peer's signatures, and the names of the threads it ran on."""
    keys = KeySet.from_jwks(peer.jwks)
    threads: set[str] = set()

    def verify(tx: dict[str, Any], signed: bytes) -> None:
        threads.add(threading.current_thread().name)
        keys.verify(tx["signature"], signed)

    return verify, threads


def test_a_batch_verified_in_parts_gives_what_one_thread_gives_in_batch_order():
    peer = SigningPeer()
    verify, threads = recording_verifier(peer)
    batch = batch_with_faults(peer, 6 * MIN_PART + 5)
    serial = receiving.check(batch, verify_all=receiving.one_by_one(verify), now=NOW)
    threads.clear()
    verify_all = ParallelVerify(verify, workers=3)
    try:
        parallel = receiving.check(batch, verify_all=verify_all, now=NOW)
    finally:
        verify_all.close()

    assert len(threads) == 3  # the caller and two workers each took a part
    assert len(parallel) == len(batch)
    for one, other in zip(serial, parallel, strict=True):
        if isinstance(one, DomainError):
            assert type(other) is type(one) and str(other) == str(one)
        else:
            assert other == one
    refused = [i for i, c in enumerate(parallel) if isinstance(c, DomainError)]
    assert refused == [*range(5, len(batch) - 1, 37), len(batch) - 1]


def test_a_short_batch_stays_on_the_calling_thread():
    peer = SigningPeer()
    verify, threads = recording_verifier(peer)
    verify_all = ParallelVerify(verify, workers=4)
    try:
        checked = receiving.check(history(peer, items=10, edits=2), verify_all=verify_all, now=NOW)
    finally:
        verify_all.close()
    assert threads == {threading.current_thread().name}
    assert not any(isinstance(c, DomainError) for c in checked)


def test_zero_workers_means_one_per_core():
    assert verify_workers(3) == 3
    assert verify_workers(0) >= 1


def test_what_another_process_prechecked_is_not_checked_again_and_the_rest_is_checked_here():
    peer = SigningPeer()
    txs = batch_with_faults(peer, 200)
    txs[3] = peer.create_item("from the future", created_at="2999-01-01T00:00:00.000000Z")  # only home checks the clock
    keys = KeySet.from_jwks(peer.jwks)
    verified_here: list[str] = []

    def verify(tx: dict[str, Any], signed: bytes) -> None:
        verified_here.append(tx["gid"])
        keys.verify(tx["signature"], signed)

    home = receiving.check(txs, verify_all=receiving.one_by_one(verify), now=NOW)
    # The other process answers every other transaction it validated and verified, and None for the rest.
    worker = receiving.verified(txs, verify_all=receiving.one_by_one(verify))
    prechecked = [tx if i % 2 == 0 and not isinstance(tx, DomainError) else None for i, tx in enumerate(worker)]
    verified_here.clear()

    both = receiving.check(txs, verify_all=receiving.one_by_one(verify), now=NOW, prechecked=prechecked)

    def shown(checked: list[receiving.Checked]) -> list[Any]:
        return [f"{type(c).__name__}: {c}" if isinstance(c, DomainError) else c for c in checked]
    assert shown(both) == shown(home)
    assert "ahead of this node's clock" in str(both[3])
    assert sum(isinstance(c, DomainError) for c in both) >= 6  # tampered, junk, the future one
    assert not {tx["gid"] for tx in prechecked if tx is not None} & set(verified_here)
    assert set(verified_here) == {tx["gid"] for i, tx in enumerate(txs)
                                  if prechecked[i] is None and isinstance(tx, dict)}
