"""Attachments: the metadata the API answers (the bytes are at ``content``)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class AttachmentOut(BaseModel):
    gid: str
    item: str
    name: str
    media_type: str = Field(description="sniffed from the bytes; a declared type only for plain text kinds")
    size: int
    sha256: str = Field(description="the SHA-256 of the bytes (hex): their name in every node's blob store")
    author: str
    origin: str
    created_at: str
    updated_at: str
    head: str
    content: str = Field(description="where the bytes are (GET, range requests allowed)")


class AttachmentList(BaseModel):
    item: str
    attachments: list[AttachmentOut]
