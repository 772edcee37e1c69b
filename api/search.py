"""Full-text search as one editor sees it: the search index's matches (``projections/search.py``), ranked,
cut to the items the editor may see (the same visibility rule as every other read), one page at a time, each
with its title and a fragment of its body where the words matched marked up.

Pages are keyed by (rank, gid), as the other lists by (creation time, gid): a cursor names the last row's
rank and gid, so the next page starts strictly after it, and stays right while the ranks do (a write that
changes an item's rank between two pages can move it across the cut).
"""

from __future__ import annotations

import re
from typing import Any

from markupsafe import escape

from api import pagination
from api.errors import InvalidCursor
from api.library import ItemQuery, Library
from domain.visibility import Editor
from infrastructure.persistence import Database
from infrastructure.visibility import JOIN, item_filter, visible_documents
from projections.documents import document
from projections.search import END, HIT, SearchIndex

_MARKED = re.compile(f"{HIT}([^{HIT}{END}]*){END}")


class ItemSearch:
    def __init__(self, db: Database, index: SearchIndex) -> None:
        self.db = db
        self.index = index

    def search(self, editor: Editor, query: ItemQuery) -> tuple[list[dict[str, Any]], str | None]:
        """The items matching ``query.text`` that the editor may see, best first, with ``highlight``."""
        found = self.index.matches(query.text or "")
        if found is None:
            return [], None
        matches, params = found
        # Rank, filter and cut the page in the index (it holds what the rule reads), then read the page's rows.
        condition, visibility = item_filter(editor)
        where, extra = [condition], []
        if query.scope:
            where.append("d.scope = ?")
            extra.append(query.scope)
        if query.tag:
            where.append("d.tag_gids LIKE ?")
            extra.append(f'%"{query.tag}"%')
        if query.cursor:
            rank, gid = _after(query.cursor)
            where.append("(d.rank > ? OR (d.rank = ? AND d.item_gid > ?))")
            extra += [rank, rank, gid]
        sql = (f"SELECT d.item_gid, d.rank FROM ({matches}) d {JOIN} WHERE {' AND '.join(where)} "
               "ORDER BY d.rank, d.item_gid LIMIT ?")
        with self.db.read() as cur:
            ranked = cur.execute(sql, [*params, *visibility, *extra, query.limit + 1]).fetchall()
            page = ranked[:query.limit]
            rows = visible_documents(cur, [row["item_gid"] for row in page], editor)
            docs = [document(rows[row["item_gid"]]) | {"rank": float(row["rank"])}
                    for row in page if row["item_gid"] in rows]  # (the index and the view agree: one snapshot)
            Library.name_tags(cur, editor, docs)
            marked = self.index.highlights(cur, query.text or "", [doc["item_gid"] for doc in docs])
        for doc in docs:
            title, body = marked.get(doc["item_gid"], (doc["title"], ""))
            doc["highlight"] = {"title": mark_up(title), "body": mark_up(body)}
        next_cursor = (pagination.encode_cursor(repr(float(page[-1]["rank"])), page[-1]["item_gid"])
                       if len(ranked) > query.limit else None)
        return docs, next_cursor


def mark_up(text: str) -> str:
    """A highlight as HTML: the text escaped, each matched word in ``<mark>``; stray marks dropped."""
    escaped = str(escape(text))
    return _MARKED.sub(r"<mark>\1</mark>", escaped).replace(HIT, "").replace(END, "")


def _after(cursor: str) -> tuple[float, str]:
    rank, gid = pagination.decode_cursor(cursor)
    try:
        return float(rank), gid
    except ValueError:
        raise InvalidCursor(f"not a cursor of this list: {cursor[:60]!r}") from None
