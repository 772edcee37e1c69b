"""Response models from read-model rows and domain values: the one place that knows both shapes.

Routes get rows (``documents``, ``tags``, ``shares``, ``conflicts`` views,
decoded by ``api/library.py``) and domain values (a ``Review``, a stored
transaction) and answer the models of ``api/schemas/``; every mapping from
one to the other is written here once, so a column rename touches one function.
"""

from __future__ import annotations

import time
from typing import Any

from api.schemas.admin import Key, KeyList, PeerStatus
from api.schemas.conflicts import (
    ConflictHead,
    ConflictOutcome,
    ConflictPage,
    ConflictProposal,
    ConflictResolution,
    ConflictReview,
    ConflictSummary,
    ConflictVersion,
    ProposedFields,
)
from api.schemas.items import (
    Backlinks,
    Highlight,
    History,
    HistoryNode,
    ItemOut,
    ItemPage,
    ItemStateOut,
    ItemSummary,
    ItemVersion,
    Lineage,
    LineageEntry,
    ReferenceOut,
    RenderedItem,
    SearchHit,
    SearchPage,
    TagRef,
)
from api.schemas.shares import ShareOut
from api.schemas.tags import TagOut
from domain.merge import Version
from domain.reference_scanner import ATTACHMENT
from domain.review import BASE_RULE, Review
from infrastructure.node import Node
from projections.heads import loads

Row = dict[str, Any]
HEAD_FIELDS = tuple(ConflictHead.model_fields)

# --- items ---------------------------------------------------------------------------


def summary_of(doc: Row) -> ItemSummary:
    return ItemSummary(**_summary_fields(doc))


def item_of(doc: Row) -> ItemOut:
    return ItemOut(**_summary_fields(doc), markdown=doc["markdown"], forked_from=doc["forked_from"])


def _summary_fields(doc: Row) -> dict[str, Any]:
    return {
        "gid": doc["item_gid"],
        "title": doc["title"],
        "tags": [TagRef(**ref) for ref in doc["tag_refs"]],
        "scope": doc["scope"],
        "deleted": doc["deleted"],
        "owner_edits_only": bool(doc["owner_edits_only"]),
        "author": doc["author"],
        "origin": doc["origin"],
        "created_at": doc["created_at"],
        "updated_at": doc["updated_at"],
        "updated_by": doc["updated_by"],
        "head": doc["head"],
        "heads": doc["heads"],
        "checksum": doc["checksum"],
    }


def item_page_of(docs: list[Row], next_cursor: str | None) -> ItemPage:
    return ItemPage(items=[summary_of(doc) for doc in docs], next=next_cursor)


def search_page_of(docs: list[Row], next_cursor: str | None) -> SearchPage:
    return SearchPage(items=[SearchHit(**summary_of(doc).model_dump(), rank=doc["rank"],
                                       highlight=Highlight(**doc["highlight"])) for doc in docs], next=next_cursor)


def backlinks_of(gid: str, docs: list[Row]) -> Backlinks:
    return Backlinks(item=gid, items=[summary_of(doc) for doc in docs])


def version_of(tx: Row) -> ItemVersion:
    """A stored item transaction: its signed JSON already has the model's shape."""
    return ItemVersion(**tx)


def history_of(history: Row) -> History:
    nodes = [HistoryNode(**{k: n[k] for k in HistoryNode.model_fields}) for n in history["nodes"]]
    return History(item=history["item"], heads=history["heads"], nodes=nodes)


def rendered_of(rendered: Row) -> RenderedItem:
    refs = [ReferenceOut(gid=r.gid.removeprefix(ATTACHMENT), kind="attachment" if r.gid.startswith(ATTACHMENT)
                         else "item", status=r.status, href=r.href) for r in rendered["references"]]
    return RenderedItem(item=rendered["item"], head=rendered["head"], title=rendered["title"],
                        html=rendered["html"], references=refs)


def lineage_of(gid: str, forks: list[Row]) -> Lineage:
    return Lineage(item=gid, forks=[LineageEntry(**entry) for entry in forks])


# --- tags and shares -----------------------------------------------------------------


def tag_of(row: Row) -> TagOut:
    return TagOut(gid=row["tag_gid"], name=row["name"], scope=row["scope"], head=row["head"],
                  heads=loads(row["heads"]), author=row["author"], created_at=row["created_at"],
                  updated_at=row["updated_at"])


def share_of(row: Row) -> ShareOut:
    return ShareOut(gid=row["share_gid"], item=row["item_gid"], peer=row["peer"], permission=row["permission"],
                    team=row["team"], requested=row["head_kind"] == "share.requested", revoked=bool(row["revoked"]),
                    author=row["author"], created_at=row["created_at"],
                    updated_at=row["updated_at"])


# --- conflicts -----------------------------------------------------------------------


def conflict_page_of(rows: list[Row], next_cursor: str | None) -> ConflictPage:
    return ConflictPage(conflicts=[_conflict_summary(row) for row in rows], next=next_cursor)


def _conflict_summary(row: Row) -> ConflictSummary:
    """A conflicts-view row joined to its documents row: the primary head is in columns, the others in JSON."""
    primary = ConflictHead(gid=row["head"], kind=row["head_kind"], author=row["updated_by"],
                           origin=row["head_origin"], created_at=row["updated_at"], checksum=row["checksum"])
    others = (ConflictHead(**{k: h[k] for k in HEAD_FIELDS}) for h in loads(row["other_heads"]) or [])
    heads = sorted([primary, *others], key=lambda h: (h.created_at, h.gid))
    return ConflictSummary(item=row["item_gid"], title=row["title"], deleted=bool(row["head_removed"]),
                           since=row["since"], heads=heads)


def state_of(payload: Row, hidden: frozenset[str] = frozenset()) -> ItemStateOut:
    """An item state, without the ``forked_from`` sources the caller may not see (``hidden``)."""
    return ItemStateOut(**{**payload, "forked_from": [g for g in payload["forked_from"] if g not in hidden]})


def review_of(review: Review, title: str, since: str, hidden: frozenset[str] = frozenset()) -> ConflictReview:
    """The review as the editor may see it: ``hidden`` items are left out of every ``forked_from``."""
    proposal = review.proposal
    fields = {name: {"value": f.value, "needs_human": f.needs_human, "note": f.note}
              for name, f in proposal.fields.items()}
    fields["forked_from"]["value"] = [g for g in fields["forked_from"]["value"] if g not in hidden]
    outcomes = None
    if proposal.outcomes is not None:
        outcomes = [ConflictOutcome(choice=o["choice"], document=state_of(o["document"], hidden))
                    for o in proposal.outcomes]
    return ConflictReview(
        item=review.item,
        title=title,
        since=since,
        heads=[_conflict_version(head, review.kinds, hidden) for head in review.heads],
        base=_conflict_version(review.base, review.kinds, hidden) if review.base else None,
        merge_bases=review.merge_bases,
        base_rule=BASE_RULE,
        proposal=ConflictProposal(
            document=state_of(proposal.document, hidden),
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


def _conflict_version(version: Version, kinds: dict[str, str], hidden: frozenset[str]) -> ConflictVersion:
    return ConflictVersion(gid=version.gid, kind=kinds[version.gid], author=version.author, origin=version.origin,
                           created_at=version.created_at, checksum=version.checksum, scope=version.scope,
                           state=state_of(version.payload, hidden))


def resolution_of(tx: Row, hidden: frozenset[str] = frozenset()) -> ConflictResolution:
    """The stored ``item.merged`` transaction as the answer to a resolve (``hidden`` sources left out)."""
    return ConflictResolution(item=tx["entity_gid"], transaction=tx["gid"], parents=tx["parents"], scope=tx["scope"],
                              state=state_of(tx["payload"], hidden), checksum=tx["checksum"])


# --- admin ---------------------------------------------------------------------------


def key_list_of(jwks: dict[str, Any]) -> KeyList:
    return KeyList(keys=[Key(**jwk) for jwk in jwks["keys"]])


def peer_statuses_of(node: Node) -> list[PeerStatus]:
    """Each peer's sync state, as the admin API answers it and ``fedsync peer list`` prints it."""
    now = time.time()
    last_seq = node.projector.position()
    statuses = []
    disputed: dict[str, list[str]] = {}
    for dispute in node.keys.disputes():
        for relay in dispute.vouched:
            disputed.setdefault(relay, []).append(dispute.origin)
    for peer in node.peers.all():
        queue = max(0, last_seq - peer.push_after) if peer.subscribed else 0
        statuses.append(PeerStatus(
            name=peer.name, base_url=peer.base_url, send=list(peer.send_types), accept=list(peer.accept_types),
            subscribed=peer.subscribed, last_acknowledged_seq=peer.push_after,
            queue_depth=queue, lag=queue,  # lag: queue_depth's deprecated first name
            pull_cursor=peer.pull_cursor, last_success=peer.last_success, last_error=peer.last_error,
            breaker=peer.breaker.probing(now).state, relay=peer.relay, key_disputes=disputed.get(peer.name, []),
        ))
    return statuses
