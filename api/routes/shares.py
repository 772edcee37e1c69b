"""Shares: grant a peer node read or edit access to an item, revoke it, list an item's shares."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from api.deps import CurrentEditor, LibraryDep, current_editor
from api.errors import responses
from api.responses import share_of
from api.routes.params import GidPath, ShareGidPath, json_response
from api.schemas.shares import ShareCreate, ShareList, ShareOut

router = APIRouter(prefix="/items/{gid}/shares", tags=["shares"], dependencies=[Depends(current_editor)],
                   responses=responses(401, 404, 422))


@router.get("", response_model=ShareList)
def list_shares(editor: CurrentEditor, library: LibraryDep, gid: GidPath,
                include_revoked: Annotated[bool, Query(description="also list revoked shares")] = False) -> Response:
    """The item's shares (live ones unless asked otherwise)."""
    rows = library.shares(editor, gid, include_revoked=include_revoked)
    return json_response(ShareList(shares=[share_of(row) for row in rows]))


@router.post("", response_model=ShareOut, status_code=201, responses=responses(400, 413))
def grant_share(editor: CurrentEditor, library: LibraryDep, gid: GidPath, body: ShareCreate) -> Response:
    """Grant a peer node read or edit access to the item, whatever its scope."""
    share = share_of(library.grant_share(editor, gid, peer=body.peer, permission=body.permission))
    return json_response(share, 201, {"Location": f"/items/{gid}/shares/{share.gid}"})


@router.delete("/{share}", response_model=ShareOut)
def revoke_share(editor: CurrentEditor, library: LibraryDep, gid: GidPath, share: ShareGidPath) -> Response:
    """Revoke a share (revoking a revoked share changes nothing)."""
    return json_response(share_of(library.revoke_share(editor, gid, share)))
