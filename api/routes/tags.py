"""Tags: list, read, create, rename, delete (items refer to tags by gid)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from api.deps import CurrentEditor, LibraryDep, current_editor
from api.errors import responses
from api.responses import tag_of
from api.routes.params import IfMatch, TagGidPath, json_response, named_head
from api.schemas.common import Gid
from api.schemas.tags import TagCreate, TagList, TagOut, TagRename

router = APIRouter(prefix="/tags", tags=["tags"], dependencies=[Depends(current_editor)],
                   responses=responses(401))


def _answer(row: dict[str, Any], status_code: int = 200) -> Response:
    headers = {"Location": f"/tags/{row['tag_gid']}"} if status_code == 201 else {}
    return json_response(tag_of(row), status_code, headers, head=row["head"])


@router.get("", response_model=TagList)
def list_tags(editor: CurrentEditor, library: LibraryDep) -> Response:
    """Every tag of this node that this editor may see (deleted ones left out), by name."""
    return json_response(TagList(tags=[tag_of(row) for row in library.tags(editor)]))


@router.post("", response_model=TagOut, status_code=201, responses=responses(400, 413, 422))
def create_tag(editor: CurrentEditor, library: LibraryDep, body: TagCreate) -> Response:
    """Create a tag."""
    gid = library.create_tag(editor, name=body.name, scope=body.scope)
    return _answer(library.tag(editor, gid), 201)


@router.get("/{tag}", response_model=TagOut, responses=responses(404, 422))
def read_tag(editor: CurrentEditor, library: LibraryDep, tag: TagGidPath) -> Response:
    """One tag (an OWNER or TEAM tag this editor may not see is 404, like an unknown one)."""
    return _answer(library.tag(editor, tag))


@router.patch("/{tag}", response_model=TagOut, responses=responses(400, 403, 404, 409, 413, 422))
def rename_tag(editor: CurrentEditor, library: LibraryDep, tag: TagGidPath, body: TagRename,
               if_match: IfMatch = None) -> Response:
    """Rename a tag (based on If-Match or ``parent`` when given, else on its current head)."""
    parent = named_head(if_match, body.parent, required=False)
    library.rename_tag(editor, tag, name=body.name, parent=parent)
    return _answer(library.tag(editor, tag))


@router.delete("/{tag}", status_code=204, responses=responses(400, 403, 404, 409, 422))
def delete_tag(editor: CurrentEditor, library: LibraryDep, tag: TagGidPath, if_match: IfMatch = None,
               parent: Annotated[Gid | None, Query(description="the head (or send If-Match)")] = None) -> Response:
    """Delete a tag; items keep its gid, but views leave it out."""
    library.delete_tag(editor, tag, parent=named_head(if_match, parent, required=False))
    return Response(status_code=204)
