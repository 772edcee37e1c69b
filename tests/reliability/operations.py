"""Random operations on a cluster, named by small integers so any schedule is valid.

An operation is ``(name, a, b, c)``: ``a`` picks the node, ``b`` and ``c``
pick among what that node holds *at that moment* (its items in outbox
order, an item's heads, its tags, its live shares, its peers), modulo
their number. An operation that has nothing to act on is skipped, so every
list of operations is a valid schedule and Hypothesis can shrink it
freely. Local commands record the transactions they make, by node: the
input of the oracle (``tests/reliability/model.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from domain.errors import Forbidden
from domain.item import Item
from domain.share import Share
from domain.tag import Tag
from infrastructure.node import Node
from tests.factory import author
from tests.reliability import hostile
from tests.reliability.cluster import Cluster

ITEM_SCOPES = ("NETWORK", "PUBLIC", "DOMAIN", "OWNER")
TAG_SCOPES = ("NETWORK", "OWNER", "DOMAIN", "PUBLIC")
LOCAL = ("create", "edit", "delete", "fork", "tag", "rename_tag", "tag_item", "share", "revoke", "merge",
         "rescope")
SYNC = ("pull", "push", "gap_fill", "retry", "late", "settle")
OPERATIONS = LOCAL + SYNC + ("hostile",)
Operation = tuple[str, int, int, int]


class Runner:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.made: dict[str, list[dict[str, Any]]] = {n.name: [] for n in cluster.nodes}
        self.step = 0
        self.revocations = 0
        self.rescopes = 0
        self.forbidden = 0
        self.hostile: dict[str, tuple[str, str]] = {}  # gid -> (what it was, the outcome at its target)

    def run(self, operations: list[Operation]) -> None:
        for op in operations:
            self.step += 1
            getattr(self, f"do_{op[0]}")(*op[1:])

    # --- what a node holds ---------------------------------------------------
    def node(self, a: int) -> tuple[int, Node]:
        index = a % len(self.cluster.nodes)
        return index, self.cluster.instance(index, self.step)

    @staticmethod
    def entities(node: Node, entity: str) -> list[str]:
        with node.db.read() as cur:
            rows = cur.execute("SELECT entity_gid, MIN(seq) AS first FROM transactions WHERE entity = ? "
                               "GROUP BY entity_gid ORDER BY first", (entity,)).fetchall()
        return [r["entity_gid"] for r in rows]

    @staticmethod
    def pick(values: list[Any], k: int) -> Any | None:
        return values[k % len(values)] if values else None

    def author(self, node: Node) -> str:
        return author(node.name)

    def record(self, node: Node, gid: str) -> None:
        self.made[node.name].append(node.app.transaction(gid))

    def local(self, node: Node, command: Callable[[], Any]) -> None:
        """Run a local command; one the authority rules refuse (another node's item: a scope change,
        a deletion, an OWNER or TEAM item) stores nothing, as the editor's 403 says."""
        try:
            receipt = command()
        except Forbidden:
            self.forbidden += 1
            return
        self.record(node, receipt.gid)

    @staticmethod
    def open_heads(item: Item) -> list[str]:
        heads = sorted(item.head_states.values(), key=lambda h: (h["created_at"], h["gid"]))
        return [h["gid"] for h in heads if not h["payload"]["deleted"]]

    def item(self, node: Node, b: int) -> Item | None:
        gid = self.pick(self.entities(node, "item"), b)
        return None if gid is None else node.app.entity(gid, Item)

    # --- local commands --------------------------------------------------------
    def do_create(self, a: int, b: int, c: int) -> None:
        _, node = self.node(a)
        tags = self.entities(node, "tag")
        chosen = [tags[c % len(tags)]] if tags and c % 2 else []
        self.local(node, lambda: node.app.create_item(
            author=self.author(node), title=f"item {self.step}", markdown=_lines(self.step),
            tags=chosen, scope=ITEM_SCOPES[b % len(ITEM_SCOPES)]))

    def do_edit(self, a: int, b: int, c: int, *, tags: list[str] | None = None, scope: str | None = None) -> None:
        index, node = self.node(a)
        item = self.item(node, b)
        head = self.pick(self.open_heads(item), c) if item else None
        if head is None:
            return
        old = item.head_states[head]["payload"]["markdown"].splitlines()
        line = c % max(1, len(old))
        new = [*old[:line], f"node {index} step {self.step}", *old[line + 1:]]
        self.local(node, lambda: node.app.edit_item(item.gid, parent=head, author=self.author(node),
                                                    markdown="\n".join(new) + "\n", tags=tags, scope=scope))

    def do_rescope(self, a: int, b: int, c: int) -> None:
        """An edit that changes the item's scope (widens or narrows who may see it)."""
        self.rescopes += 1
        self.do_edit(a, b, 0, scope=ITEM_SCOPES[c % len(ITEM_SCOPES)])

    def do_delete(self, a: int, b: int, c: int) -> None:
        _, node = self.node(a)
        item = self.item(node, b)
        head = self.pick(self.open_heads(item), c) if item else None
        if head is not None:
            self.local(node, lambda: node.app.delete_item(item.gid, parent=head, author=self.author(node)))

    def do_fork(self, a: int, b: int, c: int) -> None:
        _, node = self.node(a)
        item = self.item(node, b)
        if item is not None:
            self.local(node, lambda: node.app.fork_item([item.gid], author=self.author(node),
                                                        title=f"fork {self.step}"))

    def do_tag(self, a: int, b: int, c: int) -> None:
        _, node = self.node(a)
        self.local(node, lambda: node.app.create_tag(author=self.author(node), name=f"tag {self.step}",
                                                     scope=TAG_SCOPES[b % len(TAG_SCOPES)]))

    def do_rename_tag(self, a: int, b: int, c: int) -> None:
        _, node = self.node(a)
        gid = self.pick(self.entities(node, "tag"), b)
        if gid is None:
            return
        tag = node.app.entity(gid, Tag)
        head = tag.heads[c % len(tag.heads)]
        self.local(node, lambda: node.app.rename_tag(gid, parent=head, author=self.author(node),
                                                     name=f"renamed {self.step}"))

    def do_tag_item(self, a: int, b: int, c: int) -> None:
        _, node = self.node(a)
        tag = self.pick(self.entities(node, "tag"), c)
        item = self.item(node, b)
        head = self.pick(self.open_heads(item), 0) if item else None
        if tag is not None and head is not None:
            tags = sorted({*item.head_states[head]["payload"]["tags"], tag})
            self.do_edit(a, b, self.open_heads(item).index(head), tags=tags)

    def owned(self, node: Node, entity: str, cls: type) -> list[Any]:
        """The node's entities of a kind that it created (only the creator shares an item)."""
        return [e for e in (node.app.entity(g, cls) for g in self.entities(node, entity)) if e.creator == node.name]

    def do_share(self, a: int, b: int, c: int) -> None:
        index, node = self.node(a)
        item = self.pick(self.owned(node, "item", Item), b)
        others = [n.name for i, n in enumerate(self.cluster.nodes) if i != index]
        if item is not None:
            self.local(node, lambda: node.app.grant_share(author=self.author(node), item_gid=item.gid,
                                                          peer=others[c % len(others)],
                                                          permission=("read", "edit")[c % 2]))

    def do_revoke(self, a: int, b: int, c: int) -> None:
        _, node = self.node(a)
        live = [s.gid for s in self.owned(node, "share", Share) if not s.state["revoked"]]
        gid = self.pick(live, b)
        if gid is not None:
            self.revocations += 1
            self.local(node, lambda: node.app.revoke_share(gid, author=self.author(node)))

    def do_merge(self, a: int, b: int, c: int) -> None:
        _, node = self.node(a)
        split = [g for g in self.entities(node, "item") if len(node.app.entity(g, Item).heads) > 1]
        gid = self.pick(split, b)
        if gid is None:
            return
        item = node.app.entity(gid, Item)
        document = {"markdown": f"{item.state['markdown']}merged at step {self.step}\n"}
        self.local(node, lambda: node.app.merge_item(gid, heads=item.heads, author=self.author(node),
                                                     document=document))

    # --- sync steps ------------------------------------------------------------
    def peer(self, a: int, b: int) -> tuple[Node, str | None]:
        index, node = self.node(a)
        return node, self.pick(self.cluster.peers_of(index), b)

    def do_pull(self, a: int, b: int, c: int) -> None:
        node, peer = self.peer(a, b)
        if peer:
            self.cluster.pull(node, peer)

    def do_push(self, a: int, b: int, c: int) -> None:
        node, peer = self.peer(a, b)
        if peer:
            self.cluster.push(node, peer)

    def do_gap_fill(self, a: int, b: int, c: int) -> None:
        node, peer = self.peer(a, b)
        if peer:
            self.cluster.gap_fill(node, peer)

    def do_retry(self, a: int, b: int, c: int) -> None:
        _, node = self.node(a)
        node.federation.retry_pending()

    def do_settle(self, a: int, b: int, c: int) -> None:
        """One round of the background workers everywhere: every node pulls from and pushes to its peers."""
        self.cluster.sync_round()

    def do_late(self, a: int, b: int, c: int) -> None:
        self.cluster.network.deliver_late(b)

    # --- hostile senders -------------------------------------------------------
    def do_hostile(self, a: int, b: int, c: int) -> None:
        """A peer forges a transaction against what a node holds (``tests/reliability/hostile.py``)."""
        sent = hostile.send(self.cluster, a, b, c)
        if sent is not None:
            what, tx, status = sent
            self.hostile[tx["gid"]] = (what, status)


def _lines(step: int) -> str:
    return "".join(f"line {i} of {step}\n" for i in range(3))
