"""The parent DAG of one item: heads, ancestry and merge bases.

Every function takes ``parents``: gid -> parent gids of every transaction of
ONE item, and nothing else, so a conflict is computed without loading any
other item. The rules:

- A head is a transaction that no other transaction of the item names as a
  parent. An item with more than one head is a conflict.
- A transaction is its own ancestor (git's convention), so
  ``is_ancestor(parents, g, g)`` is true.
- A gid named as a parent but absent from the mapping (a missing parent not
  fetched yet) is treated as a root whose own parents are unknown.
- The merge bases of some heads are their lowest common ancestors: the common
  ancestors none of whose descendants is also a common ancestor. A criss-cross
  history has several; independent roots have none.
- ``merge_base`` picks one real transaction among them: the one with the
  greatest generation (longest path from a root, so the most recent shared
  state), ties broken by the smallest gid. Git builds a recursive virtual base
  instead; we pick a transaction that existed, so a reviewer can read it.
- A transaction may not name itself as a parent and the parents may not form
  a cycle (``check_acyclic`` raises ``ValueError``).
- Results never depend on dict order, parent-list order or head order, so
  every node computes the same answer from the same transaction set.

Each walk visits a transaction once: time is linear in the history size.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from heapq import heapify, heappop, heappush

Parents = Mapping[str, Sequence[str]]


def heads(parents: Parents) -> list[str]:
    """Transactions no other transaction names as a parent, sorted."""
    named = {p for ps in parents.values() for p in ps}
    return sorted(gid for gid in parents if gid not in named)


def ancestors(parents: Parents, gid: str) -> set[str]:
    """``gid`` and every transaction it descends from."""
    _check_known(parents, [gid])
    return _walk(parents, [gid])


def ancestors_of(parents: Parents, gids: Iterable[str]) -> set[str]:
    """``gids`` and every transaction any of them descends from (a gid ``parents`` does not hold has none)."""
    return _walk(parents, gids)


def is_ancestor(parents: Parents, a: str, b: str) -> bool:
    """True when ``a`` is ``b`` or one of its ancestors."""
    _check_known(parents, [a, b])
    return a in _walk(parents, [b])


def merge_bases(parents: Parents, heads: Sequence[str]) -> list[str]:
    """Lowest common ancestors of all ``heads``, sorted; [] when none."""
    if not heads:
        return []
    _check_known(parents, heads)
    common = _walk(parents, [heads[0]])
    for head in heads[1:]:
        common &= _walk(parents, [head])
    # Every ancestor of a common ancestor is common too, so one walk from the
    # parents of the common set finds all the common ancestors that are not
    # lowest, without comparing ancestor sets pairwise.
    below = _walk(parents, (p for gid in common for p in parents.get(gid, ())))
    return sorted(common - below)


def merge_base(parents: Parents, heads: Sequence[str]) -> str | None:
    """The merge base with the greatest generation, ties by smallest gid."""
    bases = merge_bases(parents, heads)
    if len(bases) <= 1:
        return bases[0] if bases else None
    generation = _generations(parents)
    return min(bases, key=lambda gid: (-generation[gid], gid))


def topological_order(parents: Parents) -> list[str]:
    """Every known gid, parents before children, ties taken by smallest gid."""
    order, blocked = _peel(parents)
    if blocked:
        check_acyclic(parents)  # raises, naming the cycle
    return order


def blocked_by_cycles(parents: Parents) -> set[str]:
    """Gids on a parent cycle or descending from one: they can never come after their parents."""
    return _peel(parents)[1]


def _peel(parents: Parents) -> tuple[list[str], set[str]]:
    """Kahn's walk: (the gids in topological order, the gids it never reaches)."""
    children = _children(parents)
    waiting = {gid: len(set(parents.get(gid, ()))) for gid in _nodes(parents)}
    ready = [gid for gid, count in waiting.items() if count == 0]
    heapify(ready)
    order: list[str] = []
    while ready:
        gid = heappop(ready)
        order.append(gid)
        for child in children.get(gid, ()):
            waiting[child] -= 1
            if waiting[child] == 0:
                heappush(ready, child)
    return order, set(waiting) - set(order)


def find_cycle(parents: Parents) -> list[str] | None:
    """A parent cycle as ``[a, b, ..., a]`` (following parent links), or None."""
    state: dict[str, bool] = {}  # True while on the current path, False when done
    for root in sorted(_nodes(parents)):
        if root in state:
            continue
        path, pending = [root], [_sorted_parents(parents, root)]
        state[root] = True
        while path:
            if not pending[-1]:
                state[path.pop()] = False
                pending.pop()
                continue
            nxt = pending[-1].pop()
            if state.get(nxt):
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                state[nxt] = True
                path.append(nxt)
                pending.append(_sorted_parents(parents, nxt))
    return None


def check_acyclic(parents: Parents) -> None:
    """Raise ``ValueError`` for self-parenting or a parent cycle."""
    for gid in sorted(parents):
        if gid in parents[gid]:
            raise ValueError(f"transaction {gid} names itself as a parent")
    cycle = find_cycle(parents)
    if cycle is not None:
        raise ValueError(f"parent cycle: {' -> '.join(cycle)}")


def _walk(parents: Parents, starts: Iterable[str]) -> set[str]:
    """The starts and everything reachable from them through parent links."""
    seen = set(starts)
    stack = list(seen)
    while stack:
        for parent in parents.get(stack.pop(), ()):
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen


def _nodes(parents: Parents) -> set[str]:
    nodes = set(parents)
    for ps in parents.values():
        nodes.update(ps)
    return nodes


def _children(parents: Parents) -> dict[str, set[str]]:
    children: dict[str, set[str]] = {}
    for gid, ps in parents.items():
        for parent in ps:
            children.setdefault(parent, set()).add(gid)
    return children


def _sorted_parents(parents: Parents, gid: str) -> list[str]:
    # Reversed so that pop() visits parents in ascending gid order.
    return sorted(set(parents.get(gid, ())), reverse=True)


def _generations(parents: Parents) -> dict[str, int]:
    """Longest path from a root to each transaction (roots are 0)."""
    generation: dict[str, int] = {}
    for gid in topological_order(parents):
        ps = parents.get(gid, ())
        generation[gid] = 1 + max((generation[p] for p in ps), default=-1)
    return generation


def _check_known(parents: Parents, gids: Iterable[str]) -> None:
    unknown = [gid for gid in gids if gid not in parents]
    if unknown and (missing := set(unknown) - _nodes(parents)):
        raise ValueError(f"unknown transaction(s): {', '.join(sorted(missing))}")
