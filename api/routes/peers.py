"""Admin: peering and sync status (the API twin of ``fedsync peer ...``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from api.deps import NodeDep, current_admin
from api.errors import responses
from api.responses import peer_statuses_of
from api.schemas.admin import PeerAdd, PeerStatus, PeerStatusList, SyncResult
from domain.errors import BadPeerAnswer, DomainError, PeerUnreachable
from domain.transaction import NodeName
from infrastructure.federation_client import BadAnswer, PeerError
from infrastructure.node import Node
from infrastructure.peers import entity_types

router = APIRouter(prefix="/admin/peers", tags=["admin"], dependencies=[Depends(current_admin)],
                   responses=responses(401, 403))


def _status(node: Node, name: str) -> PeerStatus:
    for status in peer_statuses_of(node):
        if status.name == name:
            return status
    node.peers.get(name)  # raises the 404
    raise AssertionError("unreachable")


@router.get("", response_model=PeerStatusList)
def list_peers(node: NodeDep) -> PeerStatusList:
    """Each peer: types sent and accepted, lag/queue depth, last acknowledged entry, last success/error, breaker."""
    return PeerStatusList(peers=peer_statuses_of(node))


@router.post("", response_model=PeerStatus, status_code=201, responses=responses(400, 422, 502))
def add_peer(node: NodeDep, request: PeerAdd) -> PeerStatus:
    """Peer with the node at a base URL: fetch its name and keys, store what we send and accept (502 when the
    URL cannot be reached, answers an error, or answers something that is not a fedsync node's answer)."""
    try:
        peer = node.add_peer(request.base_url, entity_types(request.send), entity_types(request.accept),
                             name=request.name, relay=request.relay)
    except ValueError as e:
        raise DomainError(str(e)) from None
    except BadAnswer as e:
        raise BadPeerAnswer(str(e)) from None
    except PeerError as e:
        raise PeerUnreachable(str(e)) from None
    if request.subscribe:
        try:
            node.subscribe_to(peer.name, request.tags)
        except PeerError as e:  # the peering stays (as listed): the detail says so, and how to ask again
            raise PeerUnreachable(f"peered with {peer.name}, but the subscription failed: {e}; once the peer "
                                  "knows this node, send the same request again") from None
    return _status(node, peer.name)


@router.delete("/{name}", status_code=204, responses=responses(404))
def remove_peer(node: NodeDep, name: NodeName) -> Response:
    """Forget a peer (its pinned keys stay, so its transactions keep verifying)."""
    node.peers.remove(name)
    return Response(status_code=204)


@router.post("/{name}/retry", response_model=PeerStatus, responses=responses(404))
def retry_peer(node: NodeDep, name: NodeName) -> PeerStatus:
    """Retry now: close the breaker, forget the backoff and wake the pusher."""
    node.peers.retry_now(name)
    node.wake_pusher()
    return _status(node, name)


@router.post("/{name}/sync", response_model=SyncResult, responses=responses(404, 502))
def sync_peer(node: NodeDep, name: NodeName) -> SyncResult:
    """Pull from the peer now, until it has nothing more."""
    try:
        result = node.syncer.pull(name)
    except BadAnswer as e:
        raise BadPeerAnswer(str(e)) from None
    except PeerError as e:
        raise PeerUnreachable(str(e)) from None
    return SyncResult(**result.__dict__)
