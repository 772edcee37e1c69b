"""Conflicts: the list, the review (base, heads, proposed merge) and the resolution."""

from __future__ import annotations

from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from api.schemas.common import Gid, Markdown, StrictRequest, TagGids, Title
from api.schemas.items import ItemStateOut
from domain.transaction import MAX_LIST, Scope

Value = TypeVar("Value")

# --- requests ------------------------------------------------------------------------


class ResolvedDocument(StrictRequest):
    """The merged state, every field explicit (the review's ``proposal.document`` has this shape)."""

    title: Title
    markdown: Markdown
    tags: TagGids
    forked_from: Annotated[list[Gid], Field(max_length=MAX_LIST, description="item gids this item was forked from")]
    deleted: bool = Field(False, description="true resolves a delete-against-edit conflict by deleting")


class ConflictResolve(StrictRequest):
    heads: Annotated[list[Gid], Field(min_length=2, max_length=64)] = Field(
        description="every current head, as the review listed them; a head that arrived since is 409")
    document: ResolvedDocument
    scope: Scope | None = Field(None, description="the merged item's scope (default: the narrowest of the heads)")
    accept_markers: bool = Field(False, description="store the document although it still holds conflict markers")


# --- responses -----------------------------------------------------------------------


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


class FieldProposalOut(BaseModel, Generic[Value]):
    """The proposed value of one field (``domain.merge.FieldProposal``) and how it was reached."""

    value: Value
    needs_human: bool = Field(description="true when a person must decide this field (markers, disagreement)")
    note: str


class ProposedFields(BaseModel):
    title: FieldProposalOut[str]
    markdown: FieldProposalOut[str]
    tags: FieldProposalOut[list[str]]
    forked_from: FieldProposalOut[list[str]]
    deleted: FieldProposalOut[bool]
    scope: FieldProposalOut[Scope]


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


class ConflictResolution(BaseModel):
    item: str
    transaction: str = Field(description="the stored item.merged transaction")
    parents: list[str] = Field(description="the heads it resolves")
    scope: Scope
    state: ItemStateOut
    checksum: str
