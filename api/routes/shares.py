"""Shares: grant a peer node (or a team there) read or edit access to an item, change or revoke it,
list an item's shares."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from api.deps import CurrentEditor, LibraryDep, current_editor
from api.errors import responses
from api.responses import share_of
from api.routes.params import GidPath, ShareGidPath, json_response
from api.schemas.shares import ShareChange, ShareCreate, ShareList, ShareOut, ShareRequest

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
    """Grant a node read or edit access to the item, whatever its scope (a node this node does not know is 422
    unless ``allow_unknown``)."""
    share = share_of(library.grant_share(editor, gid, peer=body.peer, permission=body.permission, team=body.team,
                                         allow_unknown=body.allow_unknown))
    return json_response(share, 201, {"Location": f"/items/{gid}/shares/{share.gid}"})


@router.delete("/{share}", response_model=ShareOut)
def revoke_share(editor: CurrentEditor, library: LibraryDep, gid: GidPath, share: ShareGidPath) -> Response:
    """Revoke a share (revoking a revoked share changes nothing)."""
    return json_response(share_of(library.revoke_share(editor, gid, share)))


@router.patch("/{share}", response_model=ShareOut, responses=responses(400, 409))
def change_share(editor: CurrentEditor, library: LibraryDep, gid: GidPath, share: ShareGidPath,
                 body: ShareChange) -> Response:
    """Change a live share's permission (and team); only the item's owner can."""
    return json_response(share_of(library.change_share(editor, gid, share, permission=body.permission,
                                                       team=body.team)))


@router.post("/requests", response_model=ShareOut, status_code=201, responses=responses(400, 403))
def request_share(editor: CurrentEditor, library: LibraryDep, gid: GidPath, body: ShareRequest) -> Response:
    """Ask the owner of another node's item to share it with a third node (needs an edit share of it here);
    the owner's policy or admin answers with a share of its own."""
    share = share_of(library.request_share(editor, gid, peer=body.peer, permission=body.permission))
    return json_response(share, 201, {"Location": f"/items/{gid}/shares/{share.gid}"})
