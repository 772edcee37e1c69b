"""Full-text search over the items an editor may see: title, body and tag names, ranked, with highlights."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from api.deps import CurrentEditor, current_editor
from api.errors import responses
from api.library import ItemQuery
from api.responses import search_page_of
from api.routes.params import json_response
from api.schemas.common import Gid
from api.schemas.items import SearchPage
from domain.transaction import Scope

router = APIRouter(prefix="/search", tags=["items"], dependencies=[Depends(current_editor)],
                   responses=responses(401))


@router.get("", response_model=SearchPage, responses=responses(400, 422))
def search(
    request: Request,
    editor: CurrentEditor,
    q: Annotated[str, Query(min_length=1, max_length=200, pattern=r"^[^\x00]*$",
                            description="words to find (each also as a word's start), all of them")],
    tag: Annotated[Gid | None, Query(description="only items carrying this tag gid")] = None,
    scope: Annotated[Scope | None, Query(description="only items of this scope")] = None,
    cursor: Annotated[str | None, Query(max_length=400, description="the 'next' of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Response:
    """Items whose title, markdown or tag names hold every word of ``q`` (as a word or a word's start), best
    first: title matches above tag matches above body matches. Each hit carries its title and a fragment of
    its body with the matched words in ``<mark>``. Deleted items and items this editor may not see are never
    found; OWNER and TEAM tags' names are not searched."""
    query = ItemQuery(tag=tag, scope=scope, text=q, cursor=cursor, limit=limit)
    docs, next_cursor = request.app.state.search.search(editor, query)
    return json_response(search_page_of(docs, next_cursor))
