"""The background workers of ``fedsync serve`` that drive ``sync.Syncer``: a
pusher woken by every save, a periodic puller with its anti-entropy rounds,
and the key refresh; which of them run in this process is ``duties.py``'s
choice when several processes serve one node.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from infrastructure.duties import Duty
from infrastructure.federation_client import PeerError
from infrastructure.peers import Peer
from infrastructure.sync import RECONCILE_EVERY, Syncer

PUSH_CONCURRENCY = 16  # subscribers pushed to at once (each at most one push at a time)
log = logging.getLogger("fedsync.sync")
T = TypeVar("T")


class SyncWorkers:
    """Background threads of ``fedsync serve``: a pusher woken by new outbox
    entries, and a periodic puller (anti-entropy) that also retries pending
    transactions.

    With ``spread``, this is one of several processes of the node
    (``duties.py``): it pushes to and pulls from only the peers whose duty it
    holds (``take``/``release``: the ``PeerDuties`` port), and refreshes keys
    and retries held transactions only while ``node_wide`` is set. Without,
    it runs everything once ``node_wide`` is set.
    """

    def __init__(self, syncer: Syncer, *, pull_interval: float = 30.0, push_poll: float = 1.0,
                 reconcile_every: int = RECONCILE_EVERY, refresh_keys: Callable[[], None] | None = None,
                 key_refresh_interval: float = 300.0, spread: bool = False) -> None:
        self.syncer = syncer
        self._held: set[Duty] | None = set() if spread else None  # None: every peer's duties are this process's
        self.node_wide = threading.Event()  # keys and held transactions are this process's duties
        self.pull_interval = pull_interval
        self.refresh_keys = refresh_keys
        self.key_refresh_interval = key_refresh_interval
        self.reconcile_every = reconcile_every
        self.push_poll = push_poll
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._push_loop, name="fedsync-push", daemon=True),
                        threading.Thread(target=self._pull_loop, name="fedsync-pull", daemon=True)]
        if refresh_keys is not None:
            self.threads.append(threading.Thread(target=self._key_loop, name="fedsync-keys", daemon=True))
        # Pushes run on a pool, at most one per subscriber at a time: a slow or unreachable subscriber
        # holds one thread until its timeout, never the others' pushes (nor the next round's).
        self._pushers = ThreadPoolExecutor(PUSH_CONCURRENCY, thread_name_prefix="fedsync-push-to")
        self._pushing: set[str] = set()
        self._pulling: str | None = None
        self._again: set[str] = set()
        self._pushing_lock = threading.Lock()  # guards _pushing, _pulling, _again and _held

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        for thread in self.threads:
            thread.join(timeout=10)
        self._pushers.shutdown(wait=False, cancel_futures=True)  # a push under way ends with the client

    def notify(self) -> None:
        self.wake.set()

    # --- the PeerDuties port (duties.py) -----------------------------------------
    def wanted(self) -> set[Duty]:
        peers = self.syncer.peers.all()
        return {("push", p.name) for p in peers if p.subscribed} | {("pull", p.name) for p in peers if p.accept_types}

    def take(self, duty: Duty) -> None:
        with self._pushing_lock:
            if self._held is not None:
                self._held.add(duty)
        if duty[0] == "push":
            self.wake.set()  # what is queued for it goes now

    def release(self, duty: Duty) -> bool:
        with self._pushing_lock:
            kind, name = duty
            busy = name in self._pushing if kind == "push" else name == self._pulling
            if busy:
                return False
            if self._held is not None:
                self._held.discard(duty)
            return True

    def release_all(self) -> None:
        with self._pushing_lock:
            if self._held is not None:
                self._held.clear()

    def held(self) -> dict[str, int]:
        """How many subscribers this process pushes to and peers it pulls from (``/readyz``)."""
        with self._pushing_lock:
            held = set(self._held) if self._held is not None else None
        if held is None:
            held = self.wanted()  # every peer's duties: read outside the lock the pushers take
        return {kind: sum(1 for k, _ in held if k == kind) for kind in ("push", "pull")}

    def _holds_a_push(self) -> bool:
        with self._pushing_lock:
            return self._held is None or any(kind == "push" for kind, _ in self._held)

    def _holds(self, duty: Duty) -> bool:
        return self._held is None or duty in self._held

    def _push_loop(self) -> None:
        # Every save wakes the pusher. With no subscriber (the common case on a busy
        # editing node) it re-reads the peers only when this process changed them or
        # after push_poll, not once per save.
        idle_since: tuple[int, float] | None = None  # (peers.changes, time) of a scan that found none
        while not self.stopping.is_set():
            self.wake.wait(self.push_poll)
            self.wake.clear()
            if not self._holds_a_push():
                continue
            if idle_since is not None and idle_since[0] == self.syncer.peers.changes \
                    and time.monotonic() - idle_since[1] < self.push_poll:
                continue
            peers = [peer for peer in self.syncer.peers.all() if peer.subscribed]
            idle_since = None if peers else (self.syncer.peers.changes, time.monotonic())
            for peer in peers:
                if self.syncer.due(peer) and not self.stopping.is_set():
                    with self._pushing_lock:
                        if not self._holds(("push", peer.name)):
                            continue
                        if peer.name in self._pushing:
                            self._again.add(peer.name)  # what was saved since its scan: once it is done
                            continue
                        self._pushing.add(peer.name)
                    self._pushers.submit(self._push_to, peer)

    def _push_to(self, peer: Peer) -> None:
        try:
            # Again at once only if one batch did not take all: a save during the push wakes the loop,
            # which marks the subscriber ``_again``; another scan after every push found nothing new.
            pushed = _logged("push to", peer, lambda: self.syncer.push(peer.name))
            busy = pushed is not None and pushed.more
        finally:
            with self._pushing_lock:
                self._pushing.discard(peer.name)
                again = peer.name in self._again
                self._again.discard(peer.name)
        if busy or again:
            self.wake.set()  # more may be queued: go again at once

    def _key_loop(self) -> None:
        assert self.refresh_keys is not None
        while not self.stopping.wait(self.key_refresh_interval):
            if not self.node_wide.is_set():
                continue
            try:
                self.refresh_keys()
            except Exception:  # keep the worker alive, but say what broke
                log.exception("refreshing peers' keys crashed")

    def _pull_loop(self) -> None:
        rounds = 0
        while not self.stopping.wait(self.pull_interval):
            rounds += 1
            full = rounds % self.reconcile_every == 0  # now and then a gid-diff instead of a cursor pull
            for peer in self.syncer.peers.all():
                if peer.accept_types and self.syncer.due(peer) and not self.stopping.is_set():
                    with self._pushing_lock:
                        if not self._holds(("pull", peer.name)):
                            continue
                        self._pulling = peer.name
                    pull = functools.partial(self.syncer.reconcile if full else self.syncer.pull, peer.name)
                    try:
                        _logged("pull from", peer, pull)
                    finally:
                        with self._pushing_lock:
                            self._pulling = None
            if not self.node_wide.is_set():
                continue
            try:
                self.syncer.inbox.retry_pending()
            except Exception:
                log.exception("retrying pending transactions crashed")


def _logged(what: str, peer: Peer, run: Callable[[], T]) -> T | None:
    """``run()``'s answer; a failure is logged, never raised (None): the worker keeps going."""
    try:
        return run()
    except PeerError as error:
        log.warning("%s %s failed: %s", what, peer.name, error, extra={"peer": peer.name, "reason": str(error)})
    except Exception:  # keep the worker alive, but say what broke
        log.exception("%s %s crashed", what, peer.name)
    return None
