"""The federation protocol's bodies (docs/protocol.md): node info, outbox pages, fetch, inbox, keys.

Transactions travel as the signed JSON objects themselves (``dict``); the
inbox verifies them, so the models do not second-guess their fields.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from api.schemas.common import WireGid
from infrastructure.federation import FETCH_MAX, HAVE_MAX

_CURSOR = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|c1\.[A-Za-z0-9_-]{1,250}")


def outbox_cursor(value: str) -> str:
    if not _CURSOR.fullmatch(value):
        raise ValueError("not an outbox cursor (the 'last' of a page this node gave you) nor a gid")
    return value


OutboxCursor = Annotated[
    str,
    Field(max_length=260, description="the 'last' of the previous page (opaque), or a gid you may see"),
    AfterValidator(outbox_cursor),
]


class NodeInfo(BaseModel):
    name: str
    base_url: str
    jwks_uri: str
    protocol: str = "fedsync/1"


class OutboxPage(BaseModel):
    transactions: list[dict[str, Any]]
    more: bool
    last: str = Field(description="your cursor (opaque, yours only): page after it next")


class GidsPage(BaseModel):
    gids: list[str]
    more: bool
    last: str = Field(description="your cursor (opaque, yours only): page after it next")


class FetchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gids: list[WireGid] = Field(max_length=FETCH_MAX)
    ancestors: bool = False
    have: list[WireGid] = Field(default_factory=list, max_length=HAVE_MAX, description=(
        "With ancestors: transactions the caller holds; they and their ancestors are left out, so a history "
        "longer than one answer comes a part at a time"))


class TransactionList(BaseModel):
    transactions: list[dict[str, Any]]


class InboxRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    transactions: list[Any]


class InboxResult(BaseModel):
    gid: str
    status: str = Field(description="stored | duplicate | pending | refused")
    reason: str | None = None
    missing: list[str] | None = None


class InboxResponse(BaseModel):
    results: list[InboxResult]


class SubscriptionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tags: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default=[], max_length=64, description="only items carrying a tag of one of these names (case folded), "
        "pushed and pulled, each with its whole history once it matches; none: every item the caller may see")


class Subscription(BaseModel):
    subscriber: str
    subscribed: bool
    tags: list[str] = Field(default=[], description="the tag filter now in force (none: every item)")


class OriginKeys(BaseModel):
    name: str
    jwks: dict[str, Any]
