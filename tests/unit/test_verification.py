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
