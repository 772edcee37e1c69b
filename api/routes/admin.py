"""Admin-only views of the node: its signing keys and its peers (editors get 403)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.deps import NodeDep, current_admin
from api.errors import responses
from api.schemas import Key, KeyList, PeerList, PeerOut

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(current_admin)],
                   responses=responses(401, 403))


@router.get("/keys", response_model=KeyList)
def list_keys(node: NodeDep) -> KeyList:
    """The node's signing keys (public parts), the active one first; retired ones still verify."""
    return KeyList(keys=[Key(**jwk) for jwk in node.keyring.jwks()["keys"]])


@router.get("/peers", response_model=PeerList)
def list_peers(node: NodeDep) -> PeerList:
    """The node's peers, what is sent to and accepted from each, and their sync status."""
    return PeerList(peers=[
        PeerOut(name=p.name, base_url=p.base_url, send_types=list(p.send_types), accept_types=list(p.accept_types),
                subscribed=p.subscribed, last_success=p.last_success, last_error=p.last_error)
        for p in node.peers.all()
    ])
