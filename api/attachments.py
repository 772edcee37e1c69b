"""Attachments as one editor sees them: an item's files, their bytes, adding, replacing and deleting one.

The metadata is an attachment transaction (``domain/attachment.py``), the bytes sit in the node's blob store
under their SHA-256 (``infrastructure/blobs.py``). An attachment is exactly as visible as its item: one of an
item the editor may not see is the same 404 as one that does not exist. Only attachments its item's owner
made count (as for shares): one another node made on an item it does not own is never shown. Bytes a node
does not hold yet (an attachment that arrived from a peer, its blob still on the way) are fetched from the
peers on first read (``fetch_missing``) and verified by hash before they are kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from api.library import Library
from domain.errors import DomainError, EntityNotFound
from domain.visibility import Editor
from infrastructure.blobs import BlobStore, sniff
from infrastructure.visibility import check_item

SELECT = ("SELECT a.* FROM attachments a JOIN documents d ON d.item_gid = a.item_gid "
          "WHERE a.deleted = 0 AND a.origin = d.origin")


class BlobMissing(DomainError):
    status = 503
    type = "blob-missing"
    title = "Attachment bytes not here yet"


class Attachments:
    def __init__(self, library: Library, blobs: BlobStore,
                 fetch_missing: Callable[[str], bool] = lambda sha256: False) -> None:
        self.library = library
        self.blobs = blobs
        self.fetch_missing = fetch_missing  # ask the peers for a blob this node lacks; True when it came

    # --- reads --------------------------------------------------------------------------------------------
    def of_item(self, editor: Editor, item_gid: str) -> list[dict[str, Any]]:
        with self.library.db.read() as cur:
            check_item(cur, editor, item_gid, include_deleted=False)
            return cur.execute(f"{SELECT} AND a.item_gid = ? ORDER BY a.created_at, a.attachment_gid",
                               (item_gid,)).fetchall()

    def get(self, editor: Editor, attachment_gid: str) -> dict[str, Any]:
        with self.library.db.read() as cur:
            row = cur.execute(f"{SELECT} AND a.attachment_gid = ?", (attachment_gid,)).fetchone()
            if row is None:
                raise EntityNotFound(f"no attachment {attachment_gid} on this node")
            try:
                check_item(cur, editor, row["item_gid"], include_deleted=False)
            except EntityNotFound:
                raise EntityNotFound(f"no attachment {attachment_gid} on this node") from None
        return row

    def content(self, editor: Editor, attachment_gid: str, start: int = 0,
                end: int | None = None) -> tuple[dict[str, Any], bytes]:
        """The attachment and the bytes ``start`` to ``end`` (exclusive; None: to the end) of its content."""
        row = self.get(editor, attachment_gid)
        if not self.blobs.has(row["sha256"]) and not self.fetch_missing(row["sha256"]):
            raise BlobMissing(f"the bytes of attachment {attachment_gid} have not reached this node yet; "
                              "try again later")
        return row, self.blobs.read(row["sha256"], start, end)

    # --- writes -------------------------------------------------------------------------------------------
    def add(self, editor: Editor, item_gid: str, *, name: str, declared_type: str | None, data: bytes) -> str:
        """Store the bytes, then the attachment transaction; returns the attachment's gid."""
        with self.library.db.read() as cur:
            check_item(cur, editor, item_gid, include_deleted=False)
        blob = self.blobs.put(data)
        self.library.teams.record(editor)
        receipt = self.library.app.add_attachment(item_gid, author=editor.author, name=name,
                                                  media_type=sniff(data, declared_type), size=blob.size,
                                                  sha256=blob.sha256)
        return receipt.entity_gid

    def replace(self, editor: Editor, attachment_gid: str, *, name: str | None, declared_type: str | None,
                data: bytes) -> None:
        self.get(editor, attachment_gid)
        blob = self.blobs.put(data)
        self.library.teams.record(editor)
        self.library.app.change_attachment(attachment_gid, author=editor.author, name=name,
                                           media_type=sniff(data, declared_type), size=blob.size,
                                           sha256=blob.sha256)

    def delete(self, editor: Editor, attachment_gid: str) -> None:
        self.get(editor, attachment_gid)
        self.library.teams.record(editor)
        self.library.app.change_attachment(attachment_gid, author=editor.author, delete=True)
