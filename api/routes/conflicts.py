"""Conflicts: list the open ones, review one (base, heads, proposed merge), resolve it (merge editors)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from api.conflict_desk import ConflictDesk
from api.deps import CurrentEditor, LibraryDep, current_editor
from api.errors import responses
from api.routes.params import GidPath, json_response
from api.schemas import (
    ConflictHead,
    ConflictOutcome,
    ConflictPage,
    ConflictProposal,
    ConflictResolve,
    ConflictReview,
    ConflictSummary,
    ConflictVersion,
    ItemStateOut,
    ProposedFields,
    Resolution,
)
from domain.errors import Forbidden
from domain.merge import Version
from domain.review import BASE_RULE, Review
from domain.visibility import Editor

MERGE_ROLES = ("merge", "admin")


async def get_desk(library: LibraryDep) -> ConflictDesk:
    return ConflictDesk(library)


async def current_merge_editor(editor: CurrentEditor) -> Editor:
    if editor.role not in MERGE_ROLES:
        raise Forbidden("resolving a conflict needs a merge editor's token (role merge) or an admin's; "
                        "editors may read the review")
    return editor


DeskDep = Annotated[ConflictDesk, Depends(get_desk)]
MergeEditor = Annotated[Editor, Depends(current_merge_editor)]

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
    page, next_cursor = desk.conflicts(editor, cursor=cursor, limit=limit)
    summaries = [ConflictSummary(**{**entry, "heads": [ConflictHead(**h) for h in entry["heads"]]}) for entry in page]
    return json_response(ConflictPage(conflicts=summaries, next=next_cursor))


@router.get("/{item_gid}", response_model=ConflictReview, responses=responses(404, 422))
def review_conflict(editor: CurrentEditor, desk: DeskDep, item_gid: GidPath) -> Response:
    """The base state, each head's state and a proposed three-way merge, field by field."""
    review, entry = desk.review(editor, item_gid)
    return json_response(review_of(review, entry["title"], entry["since"]))


@router.post("/{item_gid}/resolve", response_model=Resolution, status_code=201,
             responses=responses(400, 403, 404, 409, 413, 422))
def resolve_conflict(editor: MergeEditor, desk: DeskDep, item_gid: GidPath, body: ConflictResolve) -> Response:
    """Store an item.merged transaction whose parents are the named heads (merge role or admin)."""
    tx = desk.resolve(editor, item_gid, heads=body.heads, document=body.document.model_dump(), scope=body.scope,
                      accept_markers=body.accept_markers)
    resolution = Resolution(item=item_gid, transaction=tx["gid"], parents=tx["parents"], scope=tx["scope"],
                            state=ItemStateOut(**tx["payload"]), checksum=tx["checksum"])
    return json_response(resolution, 201, {"Location": f"/items/{item_gid}"})


def review_of(review: Review, title: str, since: str) -> ConflictReview:
    proposal = review.proposal
    fields = {name: {"value": f.value, "needs_human": f.needs_human, "note": f.note}
              for name, f in proposal.fields.items()}
    outcomes = None
    if proposal.outcomes is not None:
        outcomes = [ConflictOutcome(choice=o["choice"], document=ItemStateOut(**o["document"]))
                    for o in proposal.outcomes]
    return ConflictReview(
        item=review.item,
        title=title,
        since=since,
        heads=[_version(head, review.kinds) for head in review.heads],
        base=_version(review.base, review.kinds) if review.base else None,
        merge_bases=review.merge_bases,
        base_rule=BASE_RULE,
        proposal=ConflictProposal(
            document=ItemStateOut(**proposal.document),
            scope=proposal.fields["scope"].value,
            fields=ProposedFields(**fields),
            needs_human=proposal.needs_human,
            trivial=proposal.trivial,
            pairwise=review.pairwise,
            order=proposal.order,
            delete_vs_edit=review.delete_vs_edit,
            outcomes=outcomes,
            notes=proposal.notes,
        ),
    )


def _version(version: Version, kinds: dict[str, str]) -> ConflictVersion:
    return ConflictVersion(gid=version.gid, kind=kinds[version.gid], author=version.author, origin=version.origin,
                           created_at=version.created_at, checksum=version.checksum, scope=version.scope,
                           state=ItemStateOut(**version.payload))
