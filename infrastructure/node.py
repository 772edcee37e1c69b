"""The composition root: one node's application, store, keys, read models and
federation (outbox, inbox, the protocol's answers, the syncer), each given
the collaborators it uses.

``Node.open(settings)`` wires everything for a data dir that ``init`` made;
the CLI, the API and the tests all go through it. Opening a node projects
whatever the previous run stored but did not project (a crash between the
two), so read models are complete before the first request.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from domain.application import NodeApplication
from domain.transaction import is_node_name, normal_timestamp, utc_now
from infrastructure.access import AccessReader
from infrastructure.blob_fetch import BlobFetcher
from infrastructure.blobs import blob_store_for
from infrastructure.check_pool import CheckPool
from infrastructure.data_dir_lock import SharedHold
from infrastructure.domains import same_domain
from infrastructure.duties import notify_saved
from infrastructure.federation import Federation
from infrastructure.federation_client import BadAnswer, FederationClient
from infrastructure.inbox import Inbox
from infrastructure.key_directory import KeyDirectory
from infrastructure.key_learning import KeyLearner
from infrastructure.node_auth import NodeAuthenticator, issue
from infrastructure.outbox import Outbox
from infrastructure.peers import Peer, PeerStore
from infrastructure.persistence import database_for, postgres_url, setup_lock, store_env, store_name
from infrastructure.persistence.hooks import write_pending, write_pull_cursor
from infrastructure.rebuild import RebuildReport, rebuild
from infrastructure.refusals import RefusalLog
from infrastructure.reshares import Reshares
from infrastructure.settings import CONFIG_FILE, NodeConfig, Settings
from infrastructure.signing import DEFAULT_ALGORITHM, KEYRING_FILE, CursorSeal, Keyring, KeySet, SigningKey, kid_of
from infrastructure.sync import Syncer
from infrastructure.token_registry import TokenRegistry
from infrastructure.verification import ParallelVerify, verify_workers
from infrastructure.webhooks import WebhookStore
from projections.projector import Projector

log = logging.getLogger(__name__)
DEFAULT_BASE_URL = "http://127.0.0.1:8000"


class IdentityChange(ValueError):
    """``init`` on an existing node would change its name, base URL, store or key."""


def init_node(settings: Settings, base_url: str | None = None, *, alg: str = DEFAULT_ALGORITHM,
              key_pem: bytes | None = None, host: str | None = None, force: bool = False,
              before_write: Callable[[], None] | None = None) -> NodeConfig:
    """Create the data dir, the config (name, base URL, database URL) and the signing key.

    On an existing node it changes nothing that is not asked for, and refuses (``IdentityChange``) to
    change the name, base URL, store or active key unless ``force``: peers know a node by its name and
    key, and its data lives in its store. ``before_write`` runs after that check, before anything is
    written (the CLI checks there that the store answers).
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    existing = NodeConfig.load(settings.data_dir) if (settings.data_dir / CONFIG_FILE).exists() else None
    if existing is not None and base_url is None:
        config = NodeConfig.for_base_url(existing.base_url, host or existing.host, settings.database_url)
    else:
        config = NodeConfig.for_base_url(base_url or DEFAULT_BASE_URL, host, settings.database_url)
    keys_dir = settings.keys_dir
    new_key = SigningKey.from_pem(key_pem) if key_pem is not None else None
    has_keys = (keys_dir / KEYRING_FILE).exists()
    if not force:
        changes = []
        if existing is not None:
            changes += [f"{what} {old} -> {new}" for what, old, new in (
                ("name", existing.name, config.name), ("base URL", existing.base_url, config.base_url),
                ("store", store_name(existing.database_url), store_name(config.database_url))) if old != new]
        if new_key is not None and has_keys and Keyring.load(keys_dir).active.kid != new_key.kid:
            changes.append(f"active key -> {new_key.kid} (to add a key, use 'fedsync keys import')")
        if changes:
            raise IdentityChange(f"{settings.data_dir} is node {existing.name if existing else config.name}; "
                                 f"init would change: {'; '.join(changes)}. Pass --force to do that.")
    if before_write is not None:
        before_write()
    config.save(settings.data_dir)
    if key_pem is not None:
        Keyring.import_pem(keys_dir, key_pem)
    elif not has_keys:
        Keyring.create(keys_dir, alg)
    return config


def check_peer_name(base_url: str, claimed: str, expected: str | None) -> None:
    """The name a remote node claims must be the one the admin gave, or else its URL's host."""
    if expected is not None:
        if claimed != expected:
            raise ValueError(f"{base_url} says it is {claimed}, not {expected}")
        return
    host = (urlsplit(base_url).netloc or "").lower()
    if claimed != f"urn:domain:{host}":
        raise ValueError(f"{base_url} says it is {claimed}, which is not the name of its host {host}; "
                         f"if that is right, say so with --name {claimed}")


class Node:
    def __init__(self, settings: Settings, config: NodeConfig, keyring: Keyring,
                 client: FederationClient | None = None) -> None:
        self.settings = settings
        self.config = config
        self._keyring = keyring
        self._data_dir_hold: SharedHold | None = None  # taken by ``open``
        self._keyring_file = str(settings.keys_dir / KEYRING_FILE)  # stat'ed twice per edit: no Path work each time
        self._keyring_stamp = self._keyring_file_stamp()
        env = store_env(settings.database_url, str(settings.sqlite_path))
        # Keep recently used aggregates: a get() then only reads the events stored since
        # (fast-forward), instead of replaying from the last snapshot on every edit.
        env.setdefault("AGGREGATE_CACHE_MAXSIZE", "1000")
        self.app = NodeApplication(
            env,
            node=config.name,
            signer=lambda data: self.keyring.active.sign(data),
            verifier=self._verify,
            verify_all=(verify_all := ParallelVerify(self._verify, verify_workers(settings.verify_workers))),
            after_save=self._project,
        )
        self.db = database_for(self.app.recorder)
        self._verify_all = verify_all
        self.peers = PeerStore(self.db)
        self.peers.create_tables()
        self.keys = KeyDirectory(self.db, config.name, lambda: self.keyring,
                                 is_peer=lambda name: self.peers.find(name) is not None)
        self.keys.create_tables()
        self.projector = Projector(self.db, self.app.recorder, search_language=settings.search_language)
        self.projector.create_tables()
        self.app.recorder.commit_hooks += [write_pending, write_pull_cursor]  # tables of PeerStore
        self.instance = secrets.token_hex(8)  # this process among those serving the store
        if postgres_url(settings.database_url):  # wake the other processes serving this store
            self.app.recorder.commit_hooks.append(notify_saved(self.instance))
        self.runs_duties = False  # keys, webhooks, held transactions run here (infrastructure/duties.py)
        self.held_duties: Callable[[], dict[str, int]] = lambda: {"push": 0, "pull": 0}  # peers pushed/pulled here
        self.app.recorder.in_commit = self.projector.project_in_commit
        self.app.recorder.rehearser = self.projector
        self.listeners: list[Callable[[], None]] = []  # told after every projected save
        # The HTTP port; tests give an in-process transport with the same interface.
        self.client = client or FederationClient(lambda peer: issue(self.keyring, self.name, peer),
                                                 max_answer_bytes=settings.federation_max_body_bytes)
        access = AccessReader(self.db)
        outbox = Outbox(self.app, self.app.recorder, access, self.peers, self.projector.position,
                        CursorSeal.load_or_create(settings.keys_dir), own_host=config.host, same_domain=same_domain)
        self.key_learner = KeyLearner(self.keys, self.peers, self.client, own_name=config.name)
        self.reshares = Reshares(self.db, self.app)
        self.reshares.create_tables()
        self.tokens = TokenRegistry(self.db, config.name, lambda: self.keyring)  # editor tokens issued here
        self.tokens.create_tables()
        self.webhooks = WebhookStore(self.db)  # where notices are POSTed (webhook_delivery.py delivers)
        self.webhooks.create_tables()
        self.refusals = RefusalLog()  # what peers sent that was refused, since this process started
        self.blobs = blob_store_for(settings)  # attachments' bytes, by SHA-256
        self.blob_fetcher = BlobFetcher(self.blobs, self.client, self.peers, self.refusals,
                                        max_bytes=settings.max_blob_bytes)
        self.check_pool = CheckPool(verify_workers(settings.verify_workers) - 1, self.keys.snapshot)
        inbox = Inbox(self.app, self.peers, self.key_learner, self.client, on_share_request=self.reshares.process,
                      pending_max=settings.pending_max_per_sender, refusals=self.refusals,
                      after_receive=self.blob_fetcher.after_receive, heads_of=access.heads_of,
                      check_pool=self.check_pool)
        self.federation = Federation(outbox, inbox, self.peers, self.keys)  # what peers ask of this node
        self.syncer = Syncer(outbox, inbox, self.app.index, self.peers, self.client, retry_cap=settings.retry_cap)
        self.authenticator = NodeAuthenticator(
            self.name,
            find_peer=self.peers.find,
            keys_of=self._peer_keys,
            remember_jti=self.peers.remember_jti,
        )
        try:
            self.projector.catch_up()
        except Exception:  # serve what the views hold: a broken projection must not keep the node down
            log.exception("the read models could not catch up with the events; they serve what they hold. "
                          "Run 'fedsync projections rebuild' once the cause is fixed")

    @classmethod
    def open(cls, settings: Settings, client: FederationClient | None = None) -> Node:
        config = NodeConfig.load(settings.data_dir)
        hold = SharedHold(settings.data_dir)  # a restore does not replace the node under this process
        try:
            keyring = Keyring.load(settings.keys_dir)
            with setup_lock(settings.database_url):  # processes opening one store together take turns
                node = cls(settings, config, keyring, client)
        except BaseException:
            hold.release()
            raise
        node._data_dir_hold = hold
        return node

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def keyring(self) -> Keyring:
        """The node's own keys, reloaded when their file changed (``fedsync keys rotate`` runs
        in another process, while ``serve`` keeps going: it signs with the new key at once)."""
        stamp = self._keyring_file_stamp()
        if stamp != self._keyring_stamp and stamp is not None:
            self._keyring = Keyring.load(self.settings.keys_dir)
            self._keyring_stamp = stamp
        return self._keyring

    def _keyring_file_stamp(self) -> tuple[int, int] | None:
        try:
            stat = os.stat(self._keyring_file)  # replaced atomically on change
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_mtime_ns

    def _verify(self, tx: dict[str, Any], signed: bytes) -> None:
        self.keys.verify(tx, signed)

    def _project(self) -> None:
        try:
            self.projector.settle()
        except Exception:  # the events are stored; the views catch up on the next save or start
            log.exception("projecting stored events failed; the read models are behind until the next save")
        self.wake_pusher()

    def readiness(self) -> dict[str, Any]:
        """Does the store answer, and how far are the read models behind it (``/readyz``)?"""
        events = self.app.recorder.max_notification_id() or 0
        views = self.projector.position()
        return {"store": "ok", "events": events, "views": views, "behind": max(0, events - views),
                "duties": "held" if self.runs_duties else "standby", "peer_duties": self.held_duties()}

    def rebuild_views(self, progress: Callable[[int], None] | None = None) -> RebuildReport:
        """Rebuild the read models beside the live ones and swap them in (safe while the node serves)."""
        return rebuild(self.db, self.projector, sqlite_path=self.settings.sqlite_path,
                       database_url=self.settings.database_url, progress=progress)

    def _peer_keys(self, name: str, refresh: bool) -> KeySet:
        if refresh:  # an unknown kid: the peer may have rotated; fetch in the background, never on this request
            self.key_learner.refresh_soon(self.peers.get(name))
        return self.keys.direct_keyset(name)  # never a key a relay vouched for

    def knows(self, name: str) -> bool:
        """Is ``name`` a node this node knows: itself, a peer, or a node whose keys it has?"""
        return name == self.name or self.peers.find(name) is not None or self.keys.knows(name)

    def add_peer(self, base_url: str, send: Sequence[str], accept: Sequence[str], *,
                 name: str | None = None, relay: bool = False) -> Peer:
        """Peer with the node at base_url: learn its name, pin its keys, store the peering.

        The name the remote gives itself must be the host of ``base_url``
        (``urn:domain:<host[:port]>``) unless the admin names it (``name``):
        a URL cannot claim another node's name. An existing peer is never
        moved to another URL here; remove it first. Keys of other origins
        are taken from a peer only when it is a ``relay`` (adding an existing
        peer again sets that, and the types, anew).
        """
        base_url = base_url.rstrip("/")
        info = self.client.node_info(base_url)
        claimed = info.get("name") if isinstance(info, dict) else None
        if not is_node_name(claimed):  # checked before it is named in any message
            raise BadAnswer(f"GET {base_url}/.well-known/fedsync: the answer gives no node name "
                            "('name': 'urn:domain:<host>'); is this a fedsync node?")
        if claimed == self.name:
            raise ValueError("a node cannot peer with itself")
        check_peer_name(base_url, claimed, name)
        existing = self.peers.find(claimed)
        if existing is not None and existing.base_url != base_url:
            raise ValueError(f"{claimed} is already a peer at {existing.base_url}; remove it first "
                             f"(fedsync peer remove {claimed}) to move it to {base_url}")
        name = claimed
        jwks = self.client.jwks(base_url)
        try:
            KeySet.from_jwks(jwks)
        except ValueError:  # its reason may quote the answer: not given
            raise BadAnswer(f"GET {base_url}/.well-known/jwks.json: the answer is not a JWKS document of public "
                            "signing keys") from None
        self.keys.pin(name, jwks)
        peer = Peer(name=name, base_url=base_url, send_types=tuple(send), accept_types=tuple(accept),
                    created_at=utc_now(), relay=relay)
        self.peers.add(peer)
        return self.peers.get(name)

    def signed_after_revocation(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Each revoked key of another node with the stored transactions it signed at or after the
        revocation time (accepted before this node learned of it): what an admin should look at."""
        found = []
        for revocation in self.keys.revocations():
            with self.db.read() as cur:  # a coarse filter by the second; the exact one below
                rows = cur.execute("SELECT gid FROM transactions WHERE origin = ? AND created_at >= ? "
                                   "ORDER BY seq LIMIT ?",
                                   (revocation["origin"], revocation["since"][:19], limit)).fetchall()
            txs = self.app.transactions([row["gid"] for row in rows])
            gids = [row["gid"] for row in rows if (tx := txs.get(row["gid"])) is not None
                    and kid_of(tx["signature"]) == revocation["kid"]
                    and normal_timestamp(tx["created_at"]) >= revocation["since"]]
            found.append(dict(revocation, transactions=gids))
        return found

    def subscribe_to(self, name: str, tags: Sequence[str] = ()) -> None:
        """Ask a peer to push its new outbox entries to us (only items carrying one of ``tags``, if any)."""
        peer = self.peers.get(name)
        self.client.subscribe(peer.name, peer.base_url, tags)

    def wake_pusher(self) -> None:
        for listener in self.listeners:
            listener()

    def close(self) -> None:
        self.blob_fetcher.close()
        self.key_learner.close()
        self.client.close()
        self.app.group_commit.close()
        self.app.close()
        self._verify_all.close()
        self.check_pool.close()
        if self._data_dir_hold is not None:
            self._data_dir_hold.release()


