"""Admin: the node's signing keys, its peers and their sync state, what waits for parents, what was refused."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.transaction import ENTITY_TYPES
from infrastructure.notices import KINDS
from infrastructure.webhooks import check_url, event_kinds


class Key(BaseModel):
    model_config = ConfigDict(extra="allow")
    kid: str
    alg: str
    status: str


class KeyList(BaseModel):
    keys: list[Key]


class PeerAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base_url: str = Field(max_length=500, pattern=r"^https?://", description="the peer's base URL")
    send: list[str] = Field(default=list(ENTITY_TYPES), description="entity types we send it")
    accept: list[str] = Field(default=list(ENTITY_TYPES), description="entity types we accept from it")
    subscribe: bool = Field(default=False, description="ask the peer to push to us")
    tags: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default=[], max_length=64, description="with subscribe: only items with one of these tags (names)")
    name: str | None = Field(default=None, max_length=300, pattern=r"^urn:domain:[a-z0-9.:-]+$",
                             description="the peer's node name, when it is not urn:domain:<the URL's host>")
    relay: bool = Field(default=False, description="a hub: take its word on the keys of nodes we do not peer with")

    @model_validator(mode="after")
    def _tags_filter_a_subscription(self) -> PeerAdd:
        if self.tags and not self.subscribe:  # refused before anything is stored
            raise ValueError("tags filter a subscription: give subscribe: true too")
        return self


class PeerStatus(BaseModel):
    name: str
    base_url: str
    send: list[str]
    accept: list[str]
    subscribed: bool = Field(description="the peer asked us to push to it")
    last_acknowledged_seq: int = Field(description="our outbox sequence the peer has acknowledged")
    queue_depth: int = Field(description="outbox entries after the acknowledged one: what the pusher has yet to send")
    lag: int = Field(deprecated=True, description="the same number as queue_depth, under its first name (read "
                     "queue_depth; this one stays for the clients that read it)")
    pull_cursor: str | None = Field(description="where our pulls from the peer got to: the peer's opaque cursor")
    last_success: str | None
    last_error: str | None
    breaker: str = Field(description="closed | open | half-open")
    relay: bool = Field(False, description="its word on other nodes' keys is taken")
    key_disputes: list[str] = Field(default_factory=list, description="origins for which this relay vouches other "
                                    "keys than another relay does: none of them is used until an admin decides")


class KeyDispute(BaseModel):
    origin: str
    vouched: dict[str, list[str]] = Field(description="relay -> the kids it vouches for the origin")
    trusted: list[str] = Field(description="the origin's keys this node already trusts (from the origin or an admin)")


class KeyDisputeList(BaseModel):
    disputes: list[KeyDispute]


class KeyTrust(BaseModel):
    model_config = ConfigDict(extra="forbid")
    origin: str = Field(max_length=300, pattern=r"^urn:domain:[a-z0-9.:-]+$")
    relay: str = Field(max_length=300, pattern=r"^urn:domain:[a-z0-9.:-]+$", description="the relay that is right")


class Revocation(BaseModel):
    origin: str
    kid: str
    since: str = Field(description="the key verifies nothing created at or after this time")
    transactions: list[str] = Field(description="stored transactions it signed at or after that time "
                                    "(accepted before this node learned of the revocation)")


class RevocationList(BaseModel):
    revocations: list[Revocation]


class ReshareRequest(BaseModel):
    request: str = Field(description="the request's share gid")
    item: str
    title: str
    requester: str = Field(description="the node that holds an edit share and asks")
    peer: str = Field(description="the node it asks this node to share the item with")
    permission: str
    team: str | None
    status: str | None = Field(description="granted | refused; null while waiting")
    share: str | None = Field(description="the share this node granted for it")


class ReshareRequestList(BaseModel):
    requests: list[ReshareRequest]


class PeerStatusList(BaseModel):
    peers: list[PeerStatus]


class SyncResult(BaseModel):
    peer: str
    pages: int
    received: int
    stored: int
    pending: int
    refused: int
    gap_filled: bool


class TokenInfo(BaseModel):
    """The record of an editor token this node issued (never the token itself)."""

    jti: str
    subject: str = Field(description="the editor the token names")
    role: str
    team: str | None
    label: str | None = Field(description="the note given when it was issued")
    kid: str = Field(description="the key that signed it: only the active key's tokens are accepted")
    issued_at: str
    expires_at: str
    revoked_at: str | None
    revoked_by: str | None
    legacy: bool = Field(description="issued before the node kept token records; recorded at its first use")
    status: str = Field(description="live | revoked | expired | key-retired (signed out by a key rotation)")


class TokenList(BaseModel):
    tokens: list[TokenInfo]


class TokenRevokeAll(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: str = Field(pattern=r"^[A-Za-z0-9._~-]{1,64}$", description="revoke every token of this editor "
                         "issued until now, recorded or not")


class PendingTransaction(BaseModel):
    gid: str
    entity: str
    entity_gid: str
    kind: str
    received_at: str
    missing: list[str] = Field(description="the parents it waits for")


class PendingSender(BaseModel):
    sender: str
    count: int = Field(description="transactions of this sender held here")
    oldest: list[PendingTransaction] = Field(description="the oldest of them, oldest first")


class PendingList(BaseModel):
    """Received transactions held until their parents arrive, per sender."""

    senders: list[PendingSender]


class Refusal(BaseModel):
    at: str = Field(description="when this node refused it")
    sender: str = Field(description="the peer that sent it (pushed or answered a pull)")
    gid: str
    entity: str
    kind: str
    type: str = Field(description="the problem type, as the sender was answered (forbidden, invalid-transaction, ...)")
    status: int
    reason: str = Field(description="why, cut to 500 characters")


class RefusalList(BaseModel):
    """What peers sent that this process refused, newest first."""

    refusals: list[Refusal]
    kept: int = Field(description="at most this many are kept: older ones are dropped")
    total: int = Field(description="refusals since the process started, also those no longer kept")
    since: str = Field(description="when the process started: refusals before are not kept (restart empties it)")


class WebhookAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2000, description="where the notices are POSTed: http(s)://host[:port]/path")
    events: list[str] = Field(default=list(KINDS), description=f"the notice kinds it is sent: {', '.join(KINDS)}")

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        return check_url(url)

    @field_validator("events")
    @classmethod
    def _events(cls, events: list[str]) -> list[str]:
        return list(event_kinds(events))


class WebhookStatus(BaseModel):
    """A webhook and how its deliveries went (never its secret)."""

    id: str
    url: str
    events: list[str]
    position: int = Field(description="the outbox sequence up to which the receiver has what concerns it")
    created_at: str
    last_success: str | None = Field(description="when the receiver last acknowledged a delivery (2xx)")
    last_error: str | None = Field(description="when and how the last failed attempt failed")
    attempts: int = Field(description="failed attempts since the last success (0: all is well)")
    next_attempt: str | None = Field(description="after a failure: not tried again before this time")
    delivered: int = Field(description="notices the receiver acknowledged")


class WebhookCreated(WebhookStatus):
    secret: str = Field(description="the key of the body's HMAC (X-Fedsync-Signature): shown this once only")


class WebhookList(BaseModel):
    webhooks: list[WebhookStatus]
