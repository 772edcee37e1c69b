"""Shares: the grant request and the share views."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from api.schemas.common import StrictRequest
from domain.transaction import NodeName

Permission = Literal["read", "edit"]


class ShareCreate(StrictRequest):
    peer: NodeName = Field(description="the peer node, urn:domain:<host>")
    permission: Permission


class ShareOut(BaseModel):
    gid: str
    item: str
    peer: str
    permission: Permission
    revoked: bool
    author: str
    created_at: str
    updated_at: str


class ShareList(BaseModel):
    shares: list[ShareOut]
