"""Reshare requests on the owner's node: decided by its policy, or by its admin.

A node holding an ``edit`` share of another node's item asks the owner to
share the item with a third node by a ``share.requested`` transaction,
which travels to the owner like the item's shares. The owner's node keeps
its answers in ``share_requests`` (node-local, like ``editor_teams``) and
answers a request with a ``share.granted`` of its own:

- policy ``edit-holders`` (the default): a request is granted at once when
  the requester still holds a live edit share of the item from this node
  (it could pass the text on anyway);
- policy ``admin``: every request waits for the admin (``fedsync
  share-requests``, ``grant``/``refuse``).

The policy is kept in the store (``fedsync share-requests policy``), so the
server and every command on the node apply the same one.

A request whose requester no longer holds an edit share waits for the
admin under either policy.
"""

from __future__ import annotations

from typing import Any

from domain.application import NodeApplication
from domain.errors import EntityNotFound
from domain.transaction import utc_now
from infrastructure.persistence import Database

POLICIES = ("edit-holders", "admin")
DDL = ["CREATE TABLE IF NOT EXISTS share_requests ("
       "request_gid TEXT PRIMARY KEY, status TEXT NOT NULL, share_gid TEXT, decided_by TEXT NOT NULL, "
       "decided_at TEXT NOT NULL)",
       "CREATE TABLE IF NOT EXISTS reshare_policy (id INTEGER PRIMARY KEY, policy TEXT NOT NULL)"]
_REQUESTS = ("SELECT s.share_gid AS request, s.item_gid AS item, s.peer AS peer, s.permission AS permission, "
             "s.team AS team, s.origin AS requester, s.created_at AS created_at, d.title AS title, "
             "r.status AS status, r.share_gid AS share "
             "FROM shares s JOIN documents d ON d.item_gid = s.item_gid "
             "LEFT JOIN share_requests r ON r.request_gid = s.share_gid "
             "WHERE s.head_kind = 'share.requested' AND s.revoked = 0 AND d.origin = ?")


class Reshares:
    def __init__(self, db: Database, app: NodeApplication) -> None:
        self.db = db
        self.app = app

    @property
    def policy(self) -> str:
        with self.db.read() as cur:
            row = cur.execute("SELECT policy FROM reshare_policy WHERE id = 1").fetchone()
        return POLICIES[0] if row is None else row["policy"]

    def set_policy(self, policy: str) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown reshare policy {policy!r}; use one of {', '.join(POLICIES)}")
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO reshare_policy (id, policy) VALUES (1, ?) "
                        "ON CONFLICT (id) DO UPDATE SET policy = excluded.policy", (policy,))

    def create_tables(self) -> None:
        with self.db.transaction() as cur:
            for statement in DDL:
                cur.execute(statement)

    def requests(self, *, waiting_only: bool = True, gid: str | None = None) -> list[dict[str, Any]]:
        """Requests to share this node's items (by default those still waiting for an answer; ``gid``:
        that one only)."""
        sql = _REQUESTS + (" AND r.status IS NULL" if waiting_only else "") + (" AND s.share_gid = ?" if gid else "")
        with self.db.read() as cur:
            return cur.execute(sql + " ORDER BY s.created_at, s.share_gid",
                               (self.app.node, *([gid] if gid else []))).fetchall()

    def process(self) -> int:
        """Answer what the policy answers; returns how many requests were granted."""
        if self.policy != "edit-holders":
            return 0
        granted = 0
        for request in self.requests():
            if self._holds_edit(request):
                self.grant(request["request"], decided_by=f"policy@{self.app.node}")
                granted += 1
        return granted

    def grant(self, request_gid: str, *, decided_by: str) -> str:
        """Share the item as asked; returns the new share's gid."""
        request = self._waiting(request_gid)
        receipt = self.app.grant_share(author=decided_by, item_gid=request["item"], peer=request["peer"],
                                       permission=request["permission"], team=request["team"])
        self._decide(request_gid, "granted", receipt.entity_gid, decided_by)
        return receipt.entity_gid

    def refuse(self, request_gid: str, *, decided_by: str) -> None:
        self._waiting(request_gid)
        self._decide(request_gid, "refused", None, decided_by)

    def _waiting(self, request_gid: str) -> dict[str, Any]:
        for request in self.requests(gid=request_gid):
            return request
        raise EntityNotFound(f"no waiting share request {request_gid}")

    def _holds_edit(self, request: dict[str, Any]) -> bool:
        with self.db.read() as cur:
            row = cur.execute("SELECT 1 AS held FROM shares WHERE item_gid = ? AND peer = ? AND origin = ? "
                              "AND revoked = 0 AND permission = 'edit' AND head_kind <> 'share.requested'",
                              (request["item"], request["requester"], self.app.node)).fetchone()
        return row is not None

    def _decide(self, request_gid: str, status: str, share_gid: str | None, decided_by: str) -> None:
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO share_requests (request_gid, status, share_gid, decided_by, decided_at) "
                        "VALUES (?, ?, ?, ?, ?)", (request_gid, status, share_gid, decided_by, utc_now()))
