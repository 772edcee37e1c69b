"""Items: what an editor sends to create, edit and fork one, and the views of it the API answers."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from api.schemas.common import Gid, Markdown, StrictRequest, TagGids, Title
from domain.transaction import Scope

# --- requests ------------------------------------------------------------------------


class ItemCreate(StrictRequest):
    title: Title
    markdown: Markdown = ""
    tags: TagGids = []
    scope: Scope = "NETWORK"
    owner_edits_only: bool = Field(False, description="only this node (and nodes holding an edit share) edit it")


class ItemEdit(StrictRequest):
    parent: Gid | None = Field(None, description="the head this edit is based on (or send If-Match)")
    title: Title | None = None
    markdown: Markdown | None = None
    tags: TagGids | None = None
    scope: Scope | None = None
    owner_edits_only: bool | None = Field(None, description="restrict edits to the owner (true) or lift that (false)")

    @model_validator(mode="after")
    def _changes_something(self) -> ItemEdit:
        if all(v is None for v in (self.title, self.markdown, self.tags, self.scope, self.owner_edits_only)):
            raise ValueError("an edit changes at least one of title, markdown, tags, scope, owner_edits_only")
        return self


class ForkCreate(StrictRequest):
    also_from: Annotated[list[Gid], Field(max_length=63)] = Field(
        [], description="further source items (the fork starts as a copy of the first source)")
    title: Title | None = None
    markdown: Markdown | None = None
    tags: TagGids | None = None
    scope: Scope | None = None


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
    owner_edits_only: bool = Field(description="only its owner (and nodes holding an edit share) edit it")
    author: str = Field(description="who created the item")
    origin: str
    created_at: str
    updated_at: str
    updated_by: str
    head: str = Field(description="the primary head: its state is the item's current state (also the ETag)")
    heads: list[str] = Field(description="every head; more than one is a conflict")
    checksum: str


class ItemOut(ItemSummary):
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


class ItemVersion(BaseModel):
    """One stored transaction of an item, as signed but for the sources the editor may not see."""

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
    kind: Literal["item", "attachment"] = "item"
    status: Literal["local", "fallback", "unresolved"]
    href: str | None


class RenderedItem(BaseModel):
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


class Highlight(BaseModel):
    title: str = Field(description="the title as HTML: escaped, each matched word in <mark>")
    body: str = Field(description="a fragment of the markdown around the matches, as HTML like the title")


class SearchHit(ItemSummary):
    rank: float = Field(description="lower is better (the store's own ranking; compare within one search)")
    highlight: Highlight


class SearchPage(BaseModel):
    items: list[SearchHit]
    next: str | None = Field(description="cursor of the next page (pass as ?cursor=), null on the last page")
