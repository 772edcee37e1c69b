"""Learning other nodes' keys over HTTP, by the rules of ``key_directory.py``.

- An origin that is a direct peer: its keys are fetched from its own base
  URL, never taken from whoever relayed its transactions.
- Any other origin: its keys are asked of the sender only when the admin
  marked that sender as a relay (``peer add --relay``), and recorded as
  that relay's vouch. If relays then disagree, every relay that vouched for
  the origin is asked once more (a rotation one relay has not seen yet
  settles that way); a disagreement that stays is a dispute for the admin.
- ``refresh`` re-reads every peer's JWKS and every relay's vouches (the
  scheduled refresh of ``fedsync serve``, which is how revocations arrive).
- What others' requests trigger goes through a ``Throttle``, each fetch
  bounded by ``FETCH_TIMEOUT``. ``learn`` (a batch from an authenticated
  peer, which waits for its own keys) coalesces: one fetch per peer (or relay
  and origin) at a time, later batches join it. ``refresh_soon`` (a node
  token with an unknown ``kid``, possibly anonymous) never makes its caller
  wait and starts no fetch sooner than ``FETCH_INTERVAL`` after the last.
  ``learn`` is not rate limited beyond that: a refused transaction is not
  sent again, so skipping a fetch would lose an honest one, and a sender's
  batches are taken one at a time, so it only slows itself down.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from infrastructure.federation_client import FederationClient, PeerError
from infrastructure.key_directory import KeyDirectory
from infrastructure.peers import Peer, PeerStore
from infrastructure.signing import kid_of
from infrastructure.throttle import Throttle

log = logging.getLogger("fedsync.keys")
_ANSWER_ERRORS = (PeerError, ValueError, KeyError, TypeError)  # unreachable, or an answer we cannot use
FETCH_INTERVAL = 5.0  # seconds between two fetches of one peer's keys that others' requests trigger
FETCH_TIMEOUT = 5.0  # how long a batch waits for a fetch another batch started (the client's own timeout: 5 s)


class KeyLearner:
    def __init__(self, keys: KeyDirectory, peers: PeerStore, client: FederationClient, *, own_name: str) -> None:
        self.keys = keys
        self.peers = peers
        self.client = client
        self.own_name = own_name
        self.throttle = Throttle(FETCH_INTERVAL, timeout=FETCH_TIMEOUT)  # for refresh_soon
        self._learning = Throttle(0.0, timeout=FETCH_TIMEOUT)  # coalescing only

    def learn(self, sender: Peer, txs: Iterable[Any]) -> None:
        """Learn the keys of origins whose signing key we do not know yet (before verifying a batch)."""
        kids: dict[str, set[str]] = {}
        for tx in txs:
            if isinstance(tx, dict) and isinstance(tx.get("origin"), str) and tx["origin"] != self.own_name:
                kids.setdefault(tx["origin"], set()).add(kid_of(tx.get("signature")))
        for origin, wanted in kids.items():
            if wanted <= set(self.keys.keyset(origin).kids) or \
                    wanted <= set(self.keys.keyset(origin, reload=True).kids):
                continue
            direct = sender if origin == sender.name else self.peers.find(origin)
            if direct is not None:
                self._learning.wait(("jwks", direct.name), lambda peer=direct: self._fetch_direct(peer))
            elif sender.relay:
                self._learning.wait(("relay", sender.name, origin),
                                   lambda origin=origin: self._ask_relay(sender, origin))
            else:
                log.info("keys of %s are not taken from %s: it is not a relay (peer add --relay)", origin, sender.name)

    def close(self) -> None:
        self.throttle.close()
        self._learning.close()

    def refresh_soon(self, peer: Peer) -> None:
        """Fetch a peer's JWKS in the background (throttled); for request paths that must not wait."""
        self.throttle.soon(("jwks", peer.name), lambda: self._fetch_direct(peer))

    def refresh(self) -> None:
        """Re-read every peer's JWKS and every relay's vouches (new keys, revocations)."""
        for peer in self.peers.all():
            self._fetch_direct(peer)
        for origin in self.keys.vouched_origins():
            if self.peers.find(origin) is not None:
                continue  # a direct peer now: its own JWKS, read above, is what counts
            for relay in self.keys.vouchers(origin):
                peer = self.peers.find(relay)
                if peer is not None and peer.relay:
                    self._ask(peer, origin)

    def _fetch_direct(self, peer: Peer) -> None:
        try:
            self.keys.pin(peer.name, self.client.jwks(peer.base_url))
        except _ANSWER_ERRORS as e:
            log.info("cannot read the keys of %s: %s", peer.name, e)

    def _ask_relay(self, relay: Peer, origin: str) -> None:
        if not self._ask(relay, origin):
            return
        for other in self.keys.vouchers(origin):  # a dispute: ask every voucher again, once
            peer = self.peers.find(other)
            if other != relay.name and peer is not None and peer.relay:
                self._ask(peer, origin)
        if any(d.origin == origin for d in self.keys.disputes()):
            log.warning("relays vouch different keys for %s: none is used until an admin decides "
                        "(fedsync keys disputes)", origin)

    def _ask(self, relay: Peer, origin: str) -> bool:
        """Ask a relay for an origin's keys; True when the relays now disagree."""
        try:
            return self.keys.vouch(origin, relay.name, self.client.keys_of(relay.name, relay.base_url, origin)["jwks"])
        except _ANSWER_ERRORS as e:
            log.info("cannot read the keys of %s from %s: %s", origin, relay.name, e)
            return False
