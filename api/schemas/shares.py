"""Shares: the grant request and the share views."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from api.schemas.common import StrictRequest
from domain.transaction import NodeName

Permission = Literal["read", "edit"]


Team = Annotated[str, Field(pattern=r"^[A-Za-z0-9._~-]{1,64}$", description="a team of editors on that node")]


class ShareCreate(StrictRequest):
    peer: NodeName = Field(description="the peer node, urn:domain:<host>")
    permission: Permission
    team: Team | None = Field(None, description="only this team's editors there see the item (default: every editor)")
    allow_unknown: bool = Field(False, description="share with a node this node does not know yet (not itself, not "
                                "a peer, no keys of it); without it such a share is 422 unknown-node")


class ShareRequest(StrictRequest):
    peer: NodeName = Field(description="the node the owner is asked to share the item with")
    permission: Permission


class ShareChange(StrictRequest):
    permission: Permission
    team: Team | None = Field(None, description="the team that sees it there (none: every editor)")


class ShareOut(BaseModel):
    gid: str
    item: str
    peer: str
    permission: Permission
    team: str | None = None
    requested: bool = Field(False, description="a request to the item's owner to share it, not a share")
    revoked: bool
    author: str
    created_at: str
    updated_at: str


class ShareList(BaseModel):
    shares: list[ShareOut]
