"""Conflicts: list the open ones, review one (base, heads, proposed merge), resolve it (merge editors)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from api.deps import CurrentEditor, DeskDep, MergeEditor, current_editor
from api.errors import responses
from api.responses import conflict_page_of, resolution_of, review_of
from api.routes.params import GidPath, json_response
from api.schemas.conflicts import ConflictPage, ConflictResolution, ConflictResolve, ConflictReview

router = APIRouter(prefix="/conflicts", tags=["conflicts"], dependencies=[Depends(current_editor)],
                   responses=responses(401))


@router.get("", response_model=ConflictPage, responses=responses(400, 422))
def list_conflicts(
    editor: CurrentEditor,
    desk: DeskDep,
    cursor: Annotated[str | None, Query(max_length=400, description="the 'next' of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    """Open conflicts on items this editor may see, oldest first, with title, heads, authors, origins, since."""
    rows, next_cursor = desk.conflicts(editor, cursor=cursor, limit=limit)
    return json_response(conflict_page_of(rows, next_cursor))


@router.get("/{item_gid}", response_model=ConflictReview, responses=responses(404, 422))
def review_conflict(editor: CurrentEditor, desk: DeskDep, item_gid: GidPath) -> Response:
    """The base state, each head's state and a proposed three-way merge, field by field."""
    review, entry = desk.review(editor, item_gid)
    return json_response(review_of(review, entry["title"], entry["since"], entry["hidden"]))


@router.post("/{item_gid}/resolve", response_model=ConflictResolution, status_code=201,
             responses=responses(400, 403, 404, 409, 413, 422))
def resolve_conflict(editor: MergeEditor, desk: DeskDep, item_gid: GidPath, body: ConflictResolve) -> Response:
    """Store an item.merged transaction whose parents are the named heads (merge role or admin)."""
    tx, hidden = desk.resolve(editor, item_gid, heads=body.heads, document=body.document.model_dump(),
                              scope=body.scope, accept_markers=body.accept_markers)
    return json_response(resolution_of(tx, hidden), 201, {"Location": f"/items/{item_gid}"})
