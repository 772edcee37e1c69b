"""Admin-only views of the node: its signing keys (peers: routes/peers.py; editors get 403)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.deps import NodeDep, current_admin
from api.errors import responses
from api.responses import key_list_of
from api.schemas.admin import KeyList

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(current_admin)],
                   responses=responses(401, 403))


@router.get("/keys", response_model=KeyList)
def list_keys(node: NodeDep) -> KeyList:
    """The node's signing keys (public parts), the active one first; retired ones still verify."""
    return key_list_of(node.keyring.jwks())
