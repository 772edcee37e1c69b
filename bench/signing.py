"""Sign/s and verify/s of SigningKey.sign and KeySet.verify, on one core.

Run: ``python bench/signing.py``. For each algorithm it signs and verifies a
~1.5 KB transaction-like payload, 5 runs of ~1 s each, and prints the medians.
The figures choose DEFAULT_ALGORITHM (docs/decisions/signing.md).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

RUNS = 5
RUN_SECONDS = 1.0
MIN_SIGN_RATE = 2_000  # every local edit signs; the editor API targets 500 edits/s


def pin_to_one_core() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned"
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return f"pinned to core {core}"


def openssl_rsa_pem(bits: int) -> bytes:
    """An RSA key as an operator would make it: ``openssl genrsa``."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "key.pem"
        subprocess.run(
            ["openssl", "genrsa", "-out", str(path), str(bits)], check=True, capture_output=True
        )
        return path.read_bytes()


def transaction_payload() -> bytes:
    """About 1.5 KB of canonical-JSON-like bytes, the size of a typical transaction."""
    words = "federated markdown item with a paragraph of ordinary prose "
    fields = {
        "author": "editor@urn:domain:hub.example.org",
        "created_at": "2026-11-25T12:00:00Z",
        "entity": "item",
        "entity_gid": "0b7c6f2e-8a53-4d4c-b1e2-5f0c2d9e7a11",
        "gid": "6f1c0c1e-4d5e-4b8e-9a51-0f3f7d1f2a10",
        "kind": "item.edited",
        "origin": "urn:domain:hub.example.org",
        "parents": ["1d2c3b4a-5e6f-4a8b-9c0d-e1f2a3b4c5d6"],
        "payload": {"markdown": "# Title\n\n" + words * 20, "tags": [], "title": "Title"},
        "scope": "NETWORK",
    }
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def rate(operation: Callable[[], object]) -> float:
    """Median operations per second over RUNS runs of about RUN_SECONDS each."""
    rates = []
    for _ in range(RUNS):
        count, start = 0, time.perf_counter()
        deadline = start + RUN_SECONDS
        while (now := time.perf_counter()) < deadline:
            operation()
            count += 1
        rates.append(count / (now - start))
    return statistics.median(rates)


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from infrastructure.signing import KeySet, SigningKey

    pinning = pin_to_one_core()
    payload = transaction_payload()
    keys = {
        "EdDSA (Ed25519)": SigningKey.generate("EdDSA"),
        "ES256 (P-256)": SigningKey.generate("ES256"),
        "RS256 (RSA-2048)": SigningKey.generate("RS256"),
        "RS256 (RSA-4096)": SigningKey.from_pem(openssl_rsa_pem(4096)),
    }
    print(f"payload {len(payload)} bytes, {RUNS} runs of ~{RUN_SECONDS:g} s, {pinning}")
    print(f"| {'algorithm':<17} | {'sign/s':>8} | {'verify/s':>8} | {'JWS chars':>9} |")
    print(f"|{'-' * 19}|{'-' * 9}:|{'-' * 9}:|{'-' * 10}:|")
    figures = {}
    for name, key in keys.items():
        keyset = KeySet([key.public_jwk()])
        jws = key.sign(payload)
        assert keyset.verify(jws, payload) == key.kid
        signs = rate(lambda key=key: key.sign(payload))
        verifies = rate(lambda keyset=keyset, jws=jws: keyset.verify(jws, payload))
        figures[name] = (signs, verifies)
        print(f"| {name:<17} | {signs:>8,.0f} | {verifies:>8,.0f} | {len(jws):>9} |")
    fast_enough = [name for name, (signs, _) in figures.items() if signs >= MIN_SIGN_RATE]
    if fast_enough:
        best = max(fast_enough, key=lambda name: figures[name][1])
        print(f"fastest verifier among those signing >= {MIN_SIGN_RATE:,}/s: {best}")


if __name__ == "__main__":
    main()
