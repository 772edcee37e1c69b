"""Request and response models of the editor API.

Requests are strict (no type coercion) and refuse unknown fields; gids are
accepted in any UUID spelling and handled in canonical lowercase form.
Responses are built from read-model rows by the routes; aggregates and rows
are never serialised directly.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from domain.transaction import MAX_LIST, MAX_MARKDOWN, MAX_TITLE, NodeName


def canonical_gid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError(f"not a UUID: {value[:60]!r}") from None


Gid = Annotated[
    str,
    Field(min_length=32, max_length=45, json_schema_extra={"format": "uuid"}),
    AfterValidator(canonical_gid),
]
Scope = Literal["OWNER", "TEAM", "DOMAIN", "NETWORK", "PUBLIC"]
Title = Annotated[str, Field(max_length=MAX_TITLE)]
Markdown = Annotated[str, Field(max_length=MAX_MARKDOWN)]
TagGids = Annotated[list[Gid], Field(max_length=MAX_LIST, description="tag gids (unknown tags are kept)")]
TagName = Annotated[str, Field(min_length=1, max_length=200)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# --- requests ------------------------------------------------------------------------


class ItemCreate(_Request):
    title: Title
    markdown: Markdown = ""
    tags: TagGids = []
    scope: Scope = "NETWORK"


class ItemEdit(_Request):
    parent: Gid | None = Field(None, description="the head this edit is based on (or send If-Match)")
    title: Title | None = None
    markdown: Markdown | None = None
    tags: TagGids | None = None
    scope: Scope | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> ItemEdit:
        if self.title is None and self.markdown is None and self.tags is None and self.scope is None:
            raise ValueError("an edit changes at least one of title, markdown, tags, scope")
        return self


class ForkCreate(_Request):
    also_from: Annotated[list[Gid], Field(max_length=63)] = Field(
        [], description="further source items (the fork starts as a copy of the first source)")
    title: Title | None = None
    markdown: Markdown | None = None
    tags: TagGids | None = None
    scope: Scope | None = None


class TagCreate(_Request):
    name: TagName
    scope: Scope = "NETWORK"


class TagRename(_Request):
    name: TagName
    parent: Gid | None = Field(None, description="the head this rename is based on (default: the current one)")


class ShareCreate(_Request):
    peer: NodeName = Field(description="the peer node, urn:domain:<host>")
    permission: Literal["read", "edit"]


# --- responses -----------------------------------------------------------------------


class TagRef(BaseModel):
    gid: str
    name: str


class ItemSummary(BaseModel):
    gid: str
    title: str
    tags: list[TagRef] = Field(description="the item's known tags; unknown tag gids are left out")
    scope: Scope
    deleted: bool
    author: str = Field(description="who created the item")
    origin: str
    created_at: str
    updated_at: str
    updated_by: str
    head: str = Field(description="the primary head: its state is the item's current state (also the ETag)")
    heads: list[str] = Field(description="every head; more than one is a conflict")
    checksum: str


class Item(ItemSummary):
    markdown: str
    forked_from: list[str]


class ItemPage(BaseModel):
    items: list[ItemSummary]
    next: str | None = Field(description="cursor of the next page (pass as ?cursor=), null on the last page")


class HistoryNode(BaseModel):
    gid: str
    parents: list[str]
    kind: str
    author: str
    origin: str
    created_at: str
    scope: Scope
    checksum: str


class History(BaseModel):
    item: str
    heads: list[str]
    nodes: list[HistoryNode] = Field(description="every transaction of the item, in this node's outbox order")


class ItemStateOut(BaseModel):
    title: str
    markdown: str
    tags: list[str]
    forked_from: list[str]
    deleted: bool


class Version(BaseModel):
    """One stored transaction of an item, exactly as signed."""

    gid: str
    entity: Literal["item"]
    entity_gid: str
    kind: str
    parents: list[str]
    origin: str
    author: str
    created_at: str
    scope: Scope
    payload: ItemStateOut
    checksum: str
    signature: str


class ReferenceOut(BaseModel):
    gid: str
    status: Literal["local", "fallback", "unresolved"]
    href: str | None


class Rendered(BaseModel):
    item: str
    head: str
    title: str
    html: str = Field(description="the markdown as HTML; raw HTML in the markdown is escaped")
    references: list[ReferenceOut]


class Backlinks(BaseModel):
    item: str
    items: list[ItemSummary] = Field(description="items whose current markdown refers to this item")


class LineageEntry(BaseModel):
    gid: str
    title: str
    forked_from: list[str]
    depth: int = Field(description="1 for a direct fork, 2 for a fork of a fork, ...")


class Lineage(BaseModel):
    item: str
    forks: list[LineageEntry]


class Tag(BaseModel):
    gid: str
    name: str
    scope: Scope
    head: str
    heads: list[str]
    author: str
    created_at: str
    updated_at: str


class TagList(BaseModel):
    tags: list[Tag]


class Share(BaseModel):
    gid: str
    item: str
    peer: str
    permission: Literal["read", "edit"]
    revoked: bool
    author: str
    created_at: str
    updated_at: str


class ShareList(BaseModel):
    shares: list[Share]


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
    send: list[str] = Field(default=["item", "tag", "share"], description="entity types we send it")
    accept: list[str] = Field(default=["item", "tag", "share"], description="entity types we accept from it")
    subscribe: bool = Field(default=False, description="ask the peer to push to us")


class PeerStatus(BaseModel):
    name: str
    base_url: str
    send: list[str]
    accept: list[str]
    subscribed: bool = Field(description="the peer asked us to push to it")
    last_acknowledged_seq: int = Field(description="our outbox sequence the peer has acknowledged")
    queue_depth: int = Field(description="outbox entries after the acknowledged one")
    lag: int = Field(description="outbox entries not yet acknowledged")
    pull_cursor: str | None = Field(description="the last outbox gid we pulled from the peer")
    last_success: str | None
    last_error: str | None
    breaker: str = Field(description="closed | open | half-open")


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


class Problem(BaseModel):
    """An RFC 9457 problem document (media type application/problem+json)."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None


# --- conflicts -----------------------------------------------------------------------


class ResolvedDocument(_Request):
    """The merged state, every field explicit (the review's ``proposal.document`` has this shape)."""

    title: Title
    markdown: Markdown
    tags: TagGids
    forked_from: Annotated[list[Gid], Field(max_length=MAX_LIST, description="item gids this item was forked from")]
    deleted: bool = Field(False, description="true resolves a delete-against-edit conflict by deleting")


class ConflictResolve(_Request):
    heads: Annotated[list[Gid], Field(min_length=2, max_length=64)] = Field(
        description="every current head, as the review listed them; a head that arrived since is 409")
    document: ResolvedDocument
    scope: Scope | None = Field(None, description="the merged item's scope (default: the narrowest of the heads)")
    accept_markers: bool = Field(False, description="store the document although it still holds conflict markers")


class ConflictHead(BaseModel):
    gid: str
    kind: str
    author: str
    origin: str
    created_at: str
    checksum: str


class ConflictSummary(BaseModel):
    item: str
    title: str = Field(description="the item's current title (its primary head's)")
    deleted: bool = Field(description="the primary head is a deletion")
    since: str = Field(description="when the heads split: the created_at of the transaction that split the item")
    heads: list[ConflictHead] = Field(description="the heads, by (created_at, gid)")


class ConflictPage(BaseModel):
    conflicts: list[ConflictSummary] = Field(description="oldest first (by since, then item gid)")
    next: str | None = Field(description="cursor of the next page (pass as ?cursor=), null on the last page")


class ConflictVersion(ConflictHead):
    """A head or the merge base: a transaction's metadata and the document state it records."""

    scope: Scope
    state: ItemStateOut


class TextProposal(BaseModel):
    value: str
    needs_human: bool = Field(description="true when a person must decide this field (markers, disagreement)")
    note: str


class ListProposal(BaseModel):
    value: list[str]
    needs_human: bool
    note: str


class FlagProposal(BaseModel):
    value: bool
    needs_human: bool
    note: str


class ScopeProposal(BaseModel):
    value: Scope
    needs_human: bool
    note: str


class ProposedFields(BaseModel):
    title: TextProposal
    markdown: TextProposal
    tags: ListProposal
    forked_from: ListProposal
    deleted: FlagProposal
    scope: ScopeProposal


class ConflictOutcome(BaseModel):
    choice: Literal["keep", "delete"]
    document: ItemStateOut


class ConflictProposal(BaseModel):
    document: ItemStateOut = Field(description="the proposed merged state (post it back, edited, to resolve)")
    scope: Scope
    fields: ProposedFields
    needs_human: bool
    trivial: bool = Field(description="every head has the same checksum: the proposal is that state")
    pairwise: bool = Field(description="more than two heads, merged pairwise in 'order'")
    order: list[str] = Field(description="the heads in merge order: (created_at, gid)")
    delete_vs_edit: bool = Field(description="a head deleted the item while another edited it: see 'outcomes'")
    outcomes: list[ConflictOutcome] | None
    notes: list[str]


class ConflictReview(BaseModel):
    item: str
    title: str
    since: str
    heads: list[ConflictVersion] = Field(description="each head's state, in merge order")
    base: ConflictVersion | None = Field(description="the merge base's state; null for independent roots")
    merge_bases: list[str] = Field(description="every lowest common ancestor (criss-cross histories have several)")
    base_rule: str = Field(description="how 'base' was picked among 'merge_bases'")
    proposal: ConflictProposal


class Resolution(BaseModel):
    item: str
    transaction: str = Field(description="the stored item.merged transaction")
    parents: list[str] = Field(description="the heads it resolves")
    scope: Scope
    state: ItemStateOut
    checksum: str
