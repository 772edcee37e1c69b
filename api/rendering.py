"""Markdown rendered for one editor: each reference resolved to what this editor may see on this node.

A reference to an item links to that item (``links.item`` + gid), one to an attachment to its bytes
(``links.attachment`` + gid + ``/content``: an image shows, a file downloads), each only when the editor may see
the item (an attachment is exactly as visible as its item); else the reference falls back to its URL, or is
marked unresolved (``domain/references.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from domain import references
from domain.reference_scanner import ATTACHMENT
from domain.visibility import Editor
from infrastructure.persistence import Cursor
from infrastructure.visibility import visible_documents


@dataclass(frozen=True)
class Links:
    item: str = "/items/"
    attachment: str = "/attachments/"


API_LINKS = Links()
PAGE_LINKS = Links("/ui/items/", "/ui/attachments/")  # the web pages' own (their session cookie is /ui's)


def render(cur: Cursor, editor: Editor, markdown: str, links: Links = API_LINKS) -> references.Rendered:
    def resolve(keys: Sequence[str]) -> dict[str, references.Target]:
        items = [key for key in keys if not key.startswith(ATTACHMENT)]
        found = {g: references.Target(f"{links.item}{g}", r["title"])
                 for g, r in visible_documents(cur, items, editor, columns=("title",)).items()}
        attached = {key.removeprefix(ATTACHMENT) for key in keys if key.startswith(ATTACHMENT)}
        if attached:
            marks = ",".join("?" * len(attached))
            rows = cur.execute("SELECT a.attachment_gid, a.item_gid, a.name FROM attachments a JOIN documents d "
                               "ON d.item_gid = a.item_gid WHERE a.deleted = 0 AND a.origin = d.origin "
                               f"AND a.attachment_gid IN ({marks})", sorted(attached)).fetchall()
            seen = visible_documents(cur, {r["item_gid"] for r in rows}, editor, columns=())
            found |= {ATTACHMENT + r["attachment_gid"]: references.Target(
                f"{links.attachment}{r['attachment_gid']}/content", r["name"]) for r in rows if r["item_gid"] in seen}
        return found

    return references.render(markdown, resolve)
