"""The editors' commands: each builds one signed transaction from a current head.

Every command checks its aggregate's rules first (a stale head, a deleted
item, a merge of fewer than two heads) and only then builds the
transaction, signed with the node key; ``NodeApplication`` records and
saves it (``_change`` for an existing entity, ``_store_new`` for a new
one). A command returns a ``Receipt`` (ids), never an aggregate.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID, uuid4

from domain import authority, review
from domain.aggregate_cache import CacheWatch
from domain.attachment import Attachment
from domain.entity import Entity
from domain.errors import EntityConflict, Forbidden
from domain.head_change import HeadChange
from domain.item import Item
from domain.share import Share
from domain.tag import Tag
from domain.transaction import checksum, narrowest_scope, owned_entity_gid, signing_input, validate

E = TypeVar("E", bound=Entity)
Change = Callable[[E], dict[str, Any]]  # builds the transaction from the (checked) aggregate


@dataclass(frozen=True)
class Receipt:
    """What a local command made: the entity and the new transaction; for an item, its row as the read model
    wrote it in the command's commit (None if the commit did not project it: read it back)."""

    entity_gid: str
    gid: str
    view: dict[str, Any] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class EditTerms:
    """What the caller's checks of an edit decide it carries: the share transaction it relies on (``grant``),
    and its tags (None: unchanged)."""

    grant: str | None = None
    tags: list[str] | None = None


class LocalCommands:
    """Command methods of ``NodeApplication`` (which provides the abstract parts)."""

    node: str
    signer: Callable[[bytes], str]
    clock: Callable[[], str]
    cache_watch: CacheWatch

    @abstractmethod
    def entity(self, entity_gid: str, cls: type[E]) -> E: ...

    @abstractmethod
    def run(self, entity_gid: str, cls: type[E], change: Change[E]) -> Receipt: ...

    @abstractmethod
    def _store_new(self, tx: dict[str, Any]) -> Receipt: ...

    @abstractmethod
    def transaction(self, gid: str) -> dict[str, Any]: ...

    # --- items -----------------------------------------------------------
    def create_item(self, *, author: str, title: str, markdown: str, tags: Iterable[str] = (),
                    scope: str = "NETWORK", owner_edits_only: bool = False) -> Receipt:
        payload = item_state(title, markdown, tags, [], False, owner_edits_only)
        return self._store_new(self._new_tx("item", None, "item.created", [], author, scope, payload))

    def edit_item(self, item_gid: str, *, parent: str, author: str, title: str | None = None,
                  markdown: str | None = None, tags: Iterable[str] | None = None,
                  scope: str | None = None, grant: str | None = None,
                  owner_edits_only: bool | None = None) -> Receipt:
        """An edit of head ``parent``; ``grant``: the share transaction that lets this node edit another
        node's OWNER or TEAM item (or one whose owner restricted edits to itself)."""
        fixed = EditTerms(grant, None if tags is None else list(tags))
        return self.run(item_gid, Item, self.item_edit(parent=parent, author=author, title=title, markdown=markdown,
                                                       scope=scope, owner_edits_only=owner_edits_only,
                                                       terms=lambda: fixed))

    def item_edit(self, *, parent: str, author: str, title: str | None, markdown: str | None, scope: str | None,
                  owner_edits_only: bool | None, terms: Callable[[], EditTerms]) -> HeadChange[Item, EditTerms]:
        """The change ``edit_item`` makes, for callers that run it themselves (``run``, ``NodeApplication.submit``):
        ``terms`` is called once, before the head is checked, and decides the edit's grant and tags (the caller's
        checks, which raise to refuse the edit). A caller may ``build_ahead`` on the terms it decided or expects."""

        def make(item_gid: str, head: dict[str, Any], decided: EditTerms) -> dict[str, Any]:
            edited = {"title": title, "markdown": markdown, "tags": decided.tags, "owner_edits_only": owner_edits_only}
            payload = _granted(_changed(head["payload"], {**edited, "deleted": False}), decided.grant)
            return self._new_tx("item", item_gid, "item.edited", [parent], author, scope or head["scope"], payload)

        return HeadChange(parent, terms, lambda item: item.check_can_edit(parent), make)

    def build_ahead(self, entity_gid: str, change: HeadChange[Any, Any], terms: Any) -> None:
        """Build ``change``'s transaction now, in the caller's thread, on ``terms``, from its head as the aggregate
        cache holds it (if cached): the group commit's leader then checks and records it (``domain/head_change.py``)."""
        head = self.cache_watch.cached_head(UUID(entity_gid), change.parent)
        if head is not None:
            change.build_ahead(entity_gid, head, terms)

    def delete_item(self, item_gid: str, *, parent: str, author: str) -> Receipt:
        def change(item: Item) -> dict[str, Any]:
            item.check_can_edit(parent)
            return self._tombstone(item, parent, "item.deleted", author)

        return self.run(item_gid, Item, change)

    def restore_item(self, item_gid: str, *, parent: str, author: str) -> Receipt:
        """Undo a deletion: the state of tombstone ``parent`` again, live (its owner only, as a deletion)."""

        def change(item: Item) -> dict[str, Any]:
            item.check_can_restore(parent)
            return self._successor(item, parent, "item.restored", author,
                                   dict(item.head_states[parent]["payload"], deleted=False))

        return self.run(item_gid, Item, change)

    def fork_item(self, sources: Sequence[str], *, author: str, title: str | None = None,
                  markdown: str | None = None, tags: Iterable[str] | None = None,
                  scope: str | None = None) -> Receipt:
        """A new item whose ``forked_from`` lists the sources; it starts as the first one."""
        if not sources:
            raise EntityConflict("a fork needs at least one source item")
        first = self.entity(sources[0], Item)
        for other in sources[1:]:
            self.entity(other, Item)
        forked = {"title": title, "markdown": markdown, "tags": tags, "forked_from": sources, "deleted": False,
                  "owner_edits_only": False}
        payload = _changed(first.state, forked)
        tx = self._new_tx("item", None, "item.forked", [], author, scope or first.current["scope"], payload)
        return self._store_new(tx)

    def merge_item(self, item_gid: str, *, heads: Sequence[str], author: str,
                   document: Mapping[str, Any], scope: str | None = None, grant: str | None = None) -> Receipt:
        """An ``item.merged`` of the given heads (two or more); what ``document`` leaves out is the current state's."""

        def change(item: Item) -> dict[str, Any]:
            return self._merged(item, heads, author, document, scope, grant)

        return self.run(item_gid, Item, change)

    def review_conflict(self, item_gid: str) -> review.Review:
        """The review of an item's heads: its DAG, its head states and one stored base transaction."""
        item = self.entity(item_gid, Item)
        reviews = self.__dict__.setdefault("_reviews", review.ReviewCache())  # one per application
        return reviews.get(item.gid, item.heads,
                           lambda: review.review(item.gid, item.parents_of, item.head_states, self.transaction))

    def resolve_conflict(self, item_gid: str, *, heads: Sequence[str], author: str, document: Mapping[str, Any],
                         scope: str | None = None, accept_markers: bool = False, grant: str | None = None) -> Receipt:
        """A merge editor's merge: it names exactly the current heads, holds no markers, and
        takes the narrowest scope of the heads unless it names one."""

        def change(item: Item) -> dict[str, Any]:
            review.check_heads(item.gid, item.heads, heads)
            item.check_can_merge(list(heads))
            review.check_resolution(document, accept_markers=accept_markers)
            chosen = scope or narrowest_scope([item.head_states[h]["scope"] for h in item.heads])
            return self._merged(item, heads, author, document, chosen, grant)

        return self.run(item_gid, Item, change)

    # --- tags ------------------------------------------------------------
    def create_tag(self, *, author: str, name: str, scope: str = "NETWORK") -> Receipt:
        payload = {"name": name, "deleted": False}
        return self._store_new(self._new_tx("tag", None, "tag.created", [], author, scope, payload))

    def rename_tag(self, tag_gid: str, *, parent: str, author: str, name: str) -> Receipt:
        def change(tag: Tag) -> dict[str, Any]:
            tag.check_is_head(parent)
            return self._successor(tag, parent, "tag.renamed", author, {"name": name, "deleted": False})

        return self.run(tag_gid, Tag, change)

    def delete_tag(self, tag_gid: str, *, parent: str, author: str) -> Receipt:
        def change(tag: Tag) -> dict[str, Any]:
            tag.check_is_head(parent)
            return self._tombstone(tag, parent, "tag.deleted", author)

        return self.run(tag_gid, Tag, change)

    # --- attachments -----------------------------------------------------
    def add_attachment(self, item_gid: str, *, author: str, name: str, media_type: str, size: int,
                       sha256: str) -> Receipt:
        """An attachment of the item (its bytes already in the blob store), as visible as the item."""
        item = self.entity(item_gid, Item)
        if item.deleted:
            raise EntityConflict(f"item {item_gid} is deleted: it takes no attachments")
        owner = authority.owner_of(item, self.transaction)
        if owner not in (None, self.node):
            raise Forbidden(f"item {item_gid} belongs to {owner}: only its owner adds attachments to it")
        payload = {"item": item_gid, "name": name, "media_type": media_type, "size": size, "sha256": sha256,
                   "deleted": False}
        return self._store_new(self._new_tx("attachment", None, "attachment.added", [], author,
                                            item.current["scope"], payload))

    def change_attachment(self, attachment_gid: str, *, author: str, name: str | None = None,
                          media_type: str | None = None, size: int | None = None, sha256: str | None = None,
                          delete: bool = False) -> Receipt:
        """``attachment.replaced`` (other bytes, or another name) or, with ``delete``, ``attachment.deleted``."""

        def change(attachment: Attachment) -> dict[str, Any]:
            current = attachment.state
            if current["deleted"]:
                raise EntityConflict(f"attachment {attachment_gid} is deleted")
            payload = {**current, "deleted": delete, **{k: v for k, v in (
                ("name", name), ("media_type", media_type), ("size", size), ("sha256", sha256)) if v is not None}}
            kind = "attachment.deleted" if delete else "attachment.replaced"
            return self._new_tx("attachment", attachment_gid, kind, attachment.heads, author,
                                attachment.current["scope"], payload)

        return self.run(attachment_gid, Attachment, change)

    # --- shares ----------------------------------------------------------
    def grant_share(self, *, author: str, item_gid: str, peer: str, permission: str,
                    team: str | None = None) -> Receipt:
        """Share the item with a node (and only a team there, if named)."""
        item = self.entity(item_gid, Item)
        authority.check_sharer(self.node, item, self.transaction)
        payload = {"item": item_gid, "peer": peer, "permission": permission, "revoked": False}
        if team is not None:
            payload["team"] = team
        return self._store_new(self._new_tx("share", None, "share.granted", [], author,
                                            item.current["scope"], payload))

    def request_share(self, *, author: str, item_gid: str, peer: str, permission: str, grant: str) -> Receipt:
        """Ask the owner of another node's item to share it with ``peer`` (``grant``: our edit share)."""
        item = self.entity(item_gid, Item)
        payload = {"item": item_gid, "peer": peer, "permission": permission, "revoked": False, "grant": grant}
        tx = self._new_tx("share", None, "share.requested", [], author, item.current["scope"], payload)
        authority.check_request(tx, item, self.transaction)
        return self._store_new(tx)

    def change_share(self, share_gid: str, *, author: str, permission: str, team: str | None = None) -> Receipt:
        """A live share's new permission (and team: None shares with every editor there)."""

        def change(share: Share) -> dict[str, Any]:
            authority.check_sharer(self.node, share, self.transaction)
            current = share.current
            if share.state["revoked"]:
                raise EntityConflict(f"share {share_gid} is revoked: grant a new share instead")
            payload = {k: v for k, v in current["payload"].items() if k != "team"}
            payload["permission"] = permission
            if team is not None:
                payload["team"] = team
            return self._new_tx("share", share_gid, "share.changed", share.heads, author, current["scope"], payload)

        return self.run(share_gid, Share, change)

    def revoke_share(self, share_gid: str, *, author: str) -> Receipt:
        def change(share: Share) -> dict[str, Any]:
            authority.check_sharer(self.node, share, self.transaction)
            current = share.current
            return self._new_tx("share", share_gid, "share.revoked", share.heads, author, current["scope"],
                                dict(current["payload"], revoked=True))

        return self.run(share_gid, Share, change)

    # --- building transactions ---------------------------------------------
    def _merged(self, item: Item, heads: Sequence[str], author: str, document: Mapping[str, Any],
                scope: str | None, grant: str | None = None) -> dict[str, Any]:
        item.check_can_merge(list(heads))
        current = item.current
        restricted = any(item.head_states[h]["payload"].get("owner_edits_only", False) for h in heads)
        merged = {**document, "deleted": bool(document.get("deleted", False)),
                  "owner_edits_only": document.get("owner_edits_only", restricted)}
        payload = _granted(_changed(current["payload"], merged), grant)
        if scope is None:  # as private as the most private head: a merge never widens by default
            scope = narrowest_scope([item.head_states[h]["scope"] for h in heads])
        return self._new_tx("item", item.gid, "item.merged", sorted(set(heads)), author, scope, payload)

    def _successor(self, entity: Entity, parent: str, kind: str, author: str, payload: dict[str, Any],
                   scope: str | None = None) -> dict[str, Any]:
        """The next transaction after head ``parent``, keeping its scope unless one is given."""
        return self._new_tx(entity.ENTITY, entity.gid, kind, [parent], author,
                            scope or entity.head_states[parent]["scope"], payload)

    def _tombstone(self, entity: Entity, parent: str, kind: str, author: str) -> dict[str, Any]:
        return self._successor(entity, parent, kind, author, dict(entity.head_states[parent]["payload"], deleted=True))

    def _new_tx(self, entity: str, entity_gid: str | None, kind: str, parents: list[str], author: str,
                scope: str, payload: dict[str, Any]) -> dict[str, Any]:
        """A signed transaction; ``entity_gid`` None: a creation, whose entity gid this node mints."""
        gid = str(uuid4())
        tx = {
            "gid": gid,
            "entity": entity,
            "entity_gid": entity_gid or owned_entity_gid(self.node, gid),
            "kind": kind,
            "parents": parents,
            "origin": self.node,
            "author": author,
            "created_at": self.clock(),
            "scope": scope,
            "payload": payload,
            "checksum": checksum(payload),
        }
        tx["signature"] = self.signer(signing_input(tx))
        return validate(tx)


def item_state(title: str, markdown: str, tags: Iterable[str], forked_from: Iterable[str],
               deleted: bool, owner_edits_only: bool = False) -> dict[str, Any]:
    """An item's document state in its canonical form (tag and fork lists sorted, no repeats;
    ``owner_edits_only`` only when set)."""
    state = {
        "title": title,
        "markdown": markdown,
        "tags": sorted(set(tags)),
        "forked_from": sorted(set(forked_from)),
        "deleted": deleted,
    }
    return {**state, "owner_edits_only": True} if owner_edits_only else state


def _granted(payload: dict[str, Any], grant: str | None) -> dict[str, Any]:
    """An item state that names the share transaction its edit relies on (docs/decisions/authority.md)."""
    return payload if grant is None else {**payload, "grant": grant}


def _changed(state: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``state`` with the item fields that ``changes`` gives (None or absent: unchanged)."""

    def pick(name: str) -> Any:
        value = changes.get(name)
        return state[name] if value is None else value

    restricted = changes.get("owner_edits_only")
    if restricted is None:
        restricted = state.get("owner_edits_only", False)
    return item_state(pick("title"), pick("markdown"), pick("tags"), pick("forked_from"), bool(pick("deleted")),
                      bool(restricted))
