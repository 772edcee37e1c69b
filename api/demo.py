"""``fedsync demo``: three local nodes, a relay through a hub and a conflict.

Starts a hub and two platforms as real ``fedsync serve`` processes on
127.0.0.1 (SQLite in a temporary directory), peers each platform with the
hub only, subscribes everyone to push, then: items made on each platform
reach the other one through the hub; both platforms edit the same head of
one item at the same moment, so the item splits into two heads on all
three nodes; a merge editor on the hub merges them and the merge reaches
everyone. It prints each step and what every node holds.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from domain.merge import Version, propose_merge
from domain.transaction import ENTITY_TYPES
from infrastructure.local_cluster import NodeProcess

console = Console()
ROLES = (("hub", "hub.example.org"), ("east", "east.example.org"), ("west", "west.example.org"))


def wait_until(check: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # bounded
        if check():
            return True
        time.sleep(0.2)
    return False


def run_demo() -> None:
    with tempfile.TemporaryDirectory(prefix="fedsync-demo-") as tmp:
        nodes = {role: NodeProcess(Path(tmp) / role, host=host, pull_interval=5.0, env={"FEDSYNC_RETRY_CAP": "2"})
                 for role, host in ROLES}
        try:
            _story(nodes)
        finally:
            for node in nodes.values():
                node.stop()


def _story(nodes: dict[str, NodeProcess]) -> None:
    hub, east, west = nodes["hub"], nodes["east"], nodes["west"]
    console.rule("1. three nodes on loopback")
    for node in nodes.values():
        node.init().start()
        console.print(f"{node.name:<32} {node.base_url}")

    console.rule("2. peering through the hub (the platforms never talk to each other)")
    for platform in (east, west):
        _admin(platform, lambda n, p=platform: n.add_peer(hub.base_url, ENTITY_TYPES, ENTITY_TYPES, name=hub.name,
                                                          relay=True))
        _admin(hub, lambda n, p=platform: n.add_peer(p.base_url, ENTITY_TYPES, ENTITY_TYPES, name=p.name))
        _admin(platform, lambda n: n.subscribe_to(hub.name))
        _admin(hub, lambda n, p=platform: n.subscribe_to(p.name))
        console.print(f"{platform.name} <-> {hub.name}, push both ways")

    console.rule("3. editors write on both platforms")
    made = {}
    for platform in (east, west):
        def write(n, p=platform):
            author = f"editor@{n.name}"
            tag = n.app.create_tag(author=author, name=f"from-{p.host.split('.')[0]}")
            r = n.app.create_item(author=author, title=f"Report from {p.host}", markdown="# Findings\n\nAll good.\n",
                                  tags=[tag.entity_gid], scope="NETWORK")
            return n.app.edit_item(r.entity_gid, parent=r.gid, author=author,
                                   markdown="# Findings\n\nAll good.\nChecked twice.\n")
        made[platform.host] = _admin(platform, write)
        console.print(f"{platform.name}: created a tag and an item, edited it once")
    total = sum(len(_outbox(n)) for n in (east, west))
    arrived = wait_until(lambda: all(len(_outbox(n)) == total for n in nodes.values()))
    _show(nodes, "after push through the hub" + ("" if arrived else " (still syncing)"))

    console.rule("4. a concurrent edit splits an item's head on every node")
    shared = made[east.host]
    # Both stores are opened first, then edited back to back: an edit reaches the other platform through
    # the hub within milliseconds, and an edit made after that would no longer be concurrent.
    admins = [(east.admin(), "East says: ship it.\n"), (west.admin(), "West says: wait a week.\n")]
    try:
        for n, line in admins:
            n.app.edit_item(shared.entity_gid, parent=shared.gid, author=f"editor@{n.name}",
                            markdown=f"# Findings\n\nAll good.\nChecked twice.\n{line}")
    finally:
        for n, _ in admins:
            n.close()
    wait_until(lambda: all(_conflicts(n) for n in nodes.values()))
    _show(nodes, "after both edits arrived everywhere")

    console.rule("5. a merge editor on the hub resolves it with a three-way merge")

    def merge(n):
        item = n.app.entity(shared.entity_gid)
        heads = [Version(h["gid"], h["payload"], h["author"], h["origin"], h["created_at"], h["checksum"],
                         h["scope"]) for h in item.head_states.values()]
        base_tx = n.app.transaction(shared.gid)
        base = Version(base_tx["gid"], base_tx["payload"], base_tx["author"], base_tx["origin"],
                       base_tx["created_at"], base_tx["checksum"], base_tx["scope"])
        proposal = propose_merge(base, heads)
        console.print("proposed markdown:\n" + proposal.fields["markdown"].value)
        document = dict(proposal.document, markdown=_accept_both(proposal.fields["markdown"].value))
        return n.app.merge_item(shared.entity_gid, heads=item.heads, author=f"merger@{n.name}", document=document)

    _admin(hub, merge)
    wait_until(lambda: not any(_conflicts(n) for n in nodes.values()))
    _show(nodes, "after the merge reached everyone")


def _accept_both(text: str) -> str:
    """The merge editor keeps both sides of every conflicting region."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not line.startswith(("<<<<<<<", "=======", ">>>>>>>")))


def _admin(node: NodeProcess, action: Callable):
    admin = node.admin()
    try:
        return action(admin)
    finally:
        admin.close()


def _outbox(node: NodeProcess) -> list[dict]:
    return node.query("SELECT gid FROM transactions")


def _conflicts(node: NodeProcess) -> list[dict]:
    return node.query("SELECT item_gid, heads FROM conflicts")


def _show(nodes: dict[str, NodeProcess], when: str) -> None:
    table = Table(title=when)
    table.add_column("node")
    table.add_column("transactions", justify="right")
    table.add_column("items (heads)")
    table.add_column("open conflicts", justify="right")
    for node in nodes.values():
        docs = node.query("SELECT title, heads FROM documents ORDER BY title")
        items = "\n".join(f"{d['title']} ({len(json.loads(d['heads']))})" for d in docs)
        table.add_row(node.name.removeprefix("urn:domain:"), str(len(_outbox(node))), items,
                      str(len(_conflicts(node))))
    console.print(table)
    counts = " ".join(f"{role}={len(_conflicts(node))}" for role, node in nodes.items())
    console.print(f"open conflicts per node: {counts}")

