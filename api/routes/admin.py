"""Admin-only views of the node: its signing keys, other nodes' disputed and revoked keys, what peers sent that
waits for parents or was refused (peers: routes/peers.py; editors get 403)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.deps import CurrentEditor, NodeDep, current_admin
from api.errors import responses
from api.responses import key_list_of
from api.routes.params import ShareGidPath
from api.schemas.admin import (
    KeyDispute,
    KeyDisputeList,
    KeyList,
    KeyTrust,
    PendingList,
    PendingSender,
    PendingTransaction,
    Refusal,
    RefusalList,
    ReshareRequest,
    ReshareRequestList,
    Revocation,
    RevocationList,
)
from domain.errors import DomainError
from infrastructure.node import Node

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(current_admin)],
                   responses=responses(401, 403))


@router.get("/keys", response_model=KeyList)
def list_keys(node: NodeDep) -> KeyList:
    """The node's signing keys (public parts), the active one first; retired ones still verify."""
    return key_list_of(node.keyring.jwks())


@router.get("/keys/disputes", response_model=KeyDisputeList)
def list_key_disputes(node: NodeDep) -> KeyDisputeList:
    """Origins for which relays vouch different keys: none of those keys is used until an admin trusts one relay."""
    return KeyDisputeList(disputes=[KeyDispute(**d.as_dict()) for d in node.keys.disputes()])


@router.post("/keys/disputes:trust", response_model=KeyDisputeList, responses=responses(400))
def trust_relay(node: NodeDep, request: KeyTrust) -> KeyDisputeList:
    """Settle a dispute: take one relay's keys for the origin; the disputes left are answered."""
    try:
        node.keys.trust(request.origin, request.relay)
    except ValueError as e:
        raise DomainError(str(e)) from None
    return list_key_disputes(node)


@router.get("/keys/revocations", response_model=RevocationList)
def list_revocations(node: NodeDep) -> RevocationList:
    """Other nodes' revoked keys, each with the stored transactions it signed at or after the revocation time."""
    return RevocationList(revocations=[Revocation(**r) for r in node.signed_after_revocation()])


@router.get("/pending", response_model=PendingList)
def list_pending(node: NodeDep, oldest: Annotated[int, Query(ge=1, le=200)] = 20) -> PendingList:
    """Per sender, how many received transactions wait here for their parents, and the ``oldest`` of them."""
    return PendingList(senders=[_pending_of(node, sender, oldest) for sender in node.peers.pending_senders()])


def _pending_of(node: Node, sender: str, oldest: int) -> PendingSender:
    rows = node.peers.pending(sender, oldest)
    return PendingSender(sender=sender, count=node.peers.pending_count(sender), oldest=[
        PendingTransaction(gid=row["gid"], entity=row["tx"]["entity"], entity_gid=row["tx"]["entity_gid"],
                           kind=row["tx"]["kind"], received_at=row["received_at"], missing=row["missing"])
        for row in rows])


@router.get("/refusals", response_model=RefusalList)
def list_refusals(node: NodeDep) -> RefusalList:
    """What peers sent that this node refused, with the reasons, newest first: the last 500 since the node
    (this process) started."""
    log = node.refusals
    return RefusalList(refusals=[Refusal(**vars(r)) for r in log.recent()], kept=log.kept, total=log.total,
                       since=log.since)


@router.get("/share-requests", response_model=ReshareRequestList)
def list_share_requests(node: NodeDep, every: bool = False) -> ReshareRequestList:
    """Requests from share holders to share this node's items with other nodes (waiting ones unless ``every``)."""
    return ReshareRequestList(requests=[ReshareRequest(**{k: r[k] for k in ReshareRequest.model_fields})
                                        for r in node.reshares.requests(waiting_only=not every)])


@router.post("/share-requests/{request}:grant", response_model=ReshareRequestList, responses=responses(404))
def grant_share_request(node: NodeDep, request: ShareGidPath, admin: CurrentEditor) -> ReshareRequestList:
    """Share the item as the request asks; answers the requests still waiting."""
    node.reshares.grant(request, decided_by=admin.author)
    return list_share_requests(node)


@router.post("/share-requests/{request}:refuse", response_model=ReshareRequestList, responses=responses(404))
def refuse_share_request(node: NodeDep, request: ShareGidPath, admin: CurrentEditor) -> ReshareRequestList:
    """Refuse a request; answers the requests still waiting."""
    node.reshares.refuse(request, decided_by=admin.author)
    return list_share_requests(node)
