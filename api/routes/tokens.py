"""Admin: the editor tokens the node issued, and revocation (the API twin of ``fedsync token list/revoke``).

A revocation made here counts at once in this process; other processes on the
same store (another ``serve``) see it within ``FEDSYNC_TOKEN_REFRESH_INTERVAL``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from api.deps import CurrentEditor, NodeDep, TokenGateDep, current_admin
from api.errors import responses
from api.schemas.admin import TokenInfo, TokenList, TokenRevokeAll

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(current_admin)],
                   responses=responses(401, 403))
JtiPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="a token's jti")]


@router.get("/tokens", response_model=TokenList)
def list_tokens(node: NodeDep, subject: Annotated[str | None, Query(max_length=64)] = None,
                every: Annotated[bool, Query(alias="all")] = False) -> TokenList:
    """The tokens issued here, oldest first: the live ones, or with ``all`` also expired, revoked, signed out."""
    return TokenList(tokens=[TokenInfo(**r) for r in node.tokens.records(subject=subject, every=every)])


@router.delete("/tokens/{jti}", response_model=TokenInfo, responses=responses(404, 422))
def revoke_token(node: NodeDep, gate: TokenGateDep, jti: JtiPath, admin: CurrentEditor) -> TokenInfo:
    """Revoke one token (again: nothing changes); its record. Unknown jti: 404."""
    record = node.tokens.revoke(jti, by=admin.author)
    gate.refresh()
    return TokenInfo(**record)


@router.post("/tokens:revoke", response_model=TokenList, responses=responses(400, 422))
def revoke_tokens_of(node: NodeDep, gate: TokenGateDep, request: TokenRevokeAll, admin: CurrentEditor) -> TokenList:
    """Revoke every token of one editor issued until now, recorded or not; the records revoked."""
    records = node.tokens.revoke_all_for(request.subject, by=admin.author)
    gate.refresh()
    return TokenList(tokens=[TokenInfo(**r) for r in records])
