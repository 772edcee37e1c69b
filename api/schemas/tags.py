"""Tags: create and rename requests, and the tag views."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from api.schemas.common import Gid, StrictRequest
from domain.transaction import Scope

TagName = Annotated[str, Field(min_length=1, max_length=200)]


class TagCreate(StrictRequest):
    name: TagName
    scope: Scope = "NETWORK"


class TagRename(StrictRequest):
    name: TagName
    parent: Gid | None = Field(None, description="the head this rename is based on (default: the current one)")


class TagOut(BaseModel):
    gid: str
    name: str
    scope: Scope
    head: str
    heads: list[str]
    author: str
    created_at: str
    updated_at: str


class TagList(BaseModel):
    tags: list[TagOut]
