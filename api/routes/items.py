"""Items: list, read, create, edit, delete, fork, history, versions, rendered view, backlinks, lineage."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from api.deps import CurrentEditor, LibraryDep, current_editor
from api.errors import responses
from api.library import ItemQuery, Library
from api.responses import backlinks_of, history_of, item_of, item_page_of, lineage_of, rendered_of, version_of
from api.routes.params import GidPath, IfMatch, IncludeDeleted, TxGidPath, json_response, named_head
from api.schemas.common import Gid
from api.schemas.items import (
    Backlinks,
    ForkCreate,
    History,
    ItemCreate,
    ItemEdit,
    ItemOut,
    ItemPage,
    ItemVersion,
    Lineage,
    RenderedItem,
)
from domain.transaction import Scope
from domain.visibility import Editor

router = APIRouter(prefix="/items", tags=["items"], dependencies=[Depends(current_editor)],
                   responses=responses(401))


def _item_response(doc: dict[str, Any], status_code: int = 200, location: bool = False) -> Response:
    headers = {"Location": f"/items/{doc['item_gid']}"} if location else {}
    return json_response(item_of(doc), status_code, headers, head=doc["head"])


@router.get("", response_model=ItemPage, responses=responses(400, 422))
def list_items(
    editor: CurrentEditor,
    library: LibraryDep,
    tag: Annotated[Gid | None, Query(description="only items carrying this tag gid")] = None,
    scope: Annotated[Scope | None, Query(description="only items of this scope")] = None,
    q: Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00]*$",
                                     description="text the title contains (case-insensitive)")] = None,
    cursor: Annotated[str | None, Query(max_length=400, description="the 'next' of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    include_deleted: IncludeDeleted = False,
) -> Response:
    """Items this editor may see, oldest first (stable order), one page at a time."""
    query = ItemQuery(tag=tag, scope=scope, text=q, cursor=cursor, limit=limit, include_deleted=include_deleted)
    docs, next_cursor = library.items(editor, query)
    return json_response(item_page_of(docs, next_cursor))


@router.post("", response_model=ItemOut, status_code=201, responses=responses(400, 413, 422))
def create_item(editor: CurrentEditor, library: LibraryDep, body: ItemCreate) -> Response:
    """Create an item; its author is the token's editor."""
    gid = library.create_item(editor, title=body.title, markdown=body.markdown, tags=body.tags, scope=body.scope,
                              owner_edits_only=body.owner_edits_only)
    return _item_response(library.item(editor, gid), 201, location=True)


@router.get("/{gid}", response_model=ItemOut, responses=responses(404, 422))
def read_item(editor: CurrentEditor, library: LibraryDep, gid: GidPath,
              include_deleted: IncludeDeleted = False) -> Response:
    """The item's current state, its heads and checksum; the ETag is the primary head's gid."""
    return _item_response(library.item(editor, gid, include_deleted=include_deleted))


@router.patch("/{gid}", response_model=ItemOut, responses=responses(400, 404, 409, 413, 422, 428))
def edit_item(editor: CurrentEditor, library: LibraryDep, gid: GidPath, body: ItemEdit,
              if_match: IfMatch = None) -> Response:
    """Edit an item, based on the head named by If-Match or ``parent``; a stale head is 409 with the heads."""
    return edit(editor, library, gid, body, if_match)


def edit(editor: Editor, library: Library, gid: str, body: ItemEdit, if_match: str | None) -> Response:
    """The edit route's work (``api.fast_paths`` answers most edits, from the event loop)."""
    return _item_response(library.edit_item(editor, gid, **_edit_fields(body, if_match)))


async def edit_in_loop(editor: Editor, library: Library, gid: str, body: ItemEdit, if_match: str | None) -> Response:
    """``edit`` from the event loop (``Library.edit_item_in_loop``): how ``api.fast_paths`` answers most edits."""
    return _item_response(await library.edit_item_in_loop(editor, gid, **_edit_fields(body, if_match)))


def _edit_fields(body: ItemEdit, if_match: str | None) -> dict[str, Any]:
    return {"parent": named_head(if_match, body.parent), "title": body.title, "markdown": body.markdown,
            "tags": body.tags, "scope": body.scope, "owner_edits_only": body.owner_edits_only}


@router.delete("/{gid}", response_model=ItemOut, responses=responses(400, 404, 409, 422, 428))
def delete_item(editor: CurrentEditor, library: LibraryDep, gid: GidPath, if_match: IfMatch = None,
                parent: Annotated[Gid | None, Query(description="the head (or send If-Match)")] = None) -> Response:
    """Delete (tombstone) an item, based on the head named by If-Match or ``?parent=``."""
    library.delete_item(editor, gid, parent=named_head(if_match, parent))
    return _item_response(library.item(editor, gid, include_deleted=True))


@router.post("/{gid}/restore", response_model=ItemOut, responses=responses(400, 403, 404, 409, 422, 428))
def restore_item(editor: CurrentEditor, library: LibraryDep, gid: GidPath, if_match: IfMatch = None,
                 parent: Annotated[Gid | None, Query(description="the deleted head (or send If-Match)")] = None
                 ) -> Response:
    """Restore a deleted item (an ``item.restored`` transaction based on the tombstone head named by If-Match or
    ``?parent=``): its state before the deletion, live again. Its owner only, as for a deletion."""
    library.restore_item(editor, gid, parent=named_head(if_match, parent))
    return _item_response(library.item(editor, gid))


@router.post("/{gid}/forks", response_model=ItemOut, status_code=201, responses=responses(400, 404, 413, 422))
def fork_item(editor: CurrentEditor, library: LibraryDep, gid: GidPath, body: ForkCreate) -> Response:
    """Fork this item (and ``also_from`` items) into a new item that starts as a copy of this one."""
    sources = [gid, *(s for s in body.also_from if s != gid)]
    fork = library.fork_item(editor, sources, title=body.title, markdown=body.markdown, tags=body.tags,
                             scope=body.scope)
    return _item_response(library.item(editor, fork), 201, location=True)


@router.get("/{gid}/history", response_model=History, responses=responses(404, 422))
def read_history(editor: CurrentEditor, library: LibraryDep, gid: GidPath,
                 include_deleted: IncludeDeleted = False) -> Response:
    """The item's transaction DAG: every transaction with its parents, author, origin, time, kind, checksum."""
    return json_response(history_of(library.history(editor, gid, include_deleted=include_deleted)))


@router.get("/{gid}/versions/{tx}", response_model=ItemVersion, responses=responses(404, 422))
def read_version(editor: CurrentEditor, library: LibraryDep, gid: GidPath, tx: TxGidPath) -> Response:
    """One version of the item: the stored transaction ``tx`` as signed (payload = full state), but for the
    ``forked_from`` sources this editor may not see."""
    return json_response(version_of(library.version(editor, gid, tx)))


@router.get("/{gid}/rendered", response_model=RenderedItem, responses=responses(404, 422))
def render_item(editor: CurrentEditor, library: LibraryDep, gid: GidPath,
                include_deleted: IncludeDeleted = False) -> Response:
    """The item's markdown as escaped HTML, cross-references resolved (local, fallback URL or unresolved)."""
    return json_response(rendered_of(library.render(editor, gid, include_deleted=include_deleted)))


@router.get("/{gid}/backlinks", response_model=Backlinks, responses=responses(404, 422))
def list_backlinks(editor: CurrentEditor, library: LibraryDep, gid: GidPath,
                   include_deleted: IncludeDeleted = False) -> Response:
    """Items (visible to this editor) whose current markdown refers to this item."""
    docs = library.backlinks(editor, gid, include_deleted=include_deleted)
    return json_response(backlinks_of(gid, docs))


@router.get("/{gid}/lineage", response_model=Lineage, responses=responses(404, 422))
def read_lineage(editor: CurrentEditor, library: LibraryDep, gid: GidPath,
                 include_deleted: IncludeDeleted = False) -> Response:
    """Items forked from this one, transitively (through items this editor may see)."""
    return json_response(lineage_of(gid, library.lineage(editor, gid, include_deleted=include_deleted)))
