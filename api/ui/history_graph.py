"""An item's history as a drawn DAG: each transaction a dot on a lane, each parent link a line.

Laid out as ``git log --graph`` does, newest at the top: a transaction continues the lane of its first
parent that no other child continued yet, else it opens the lowest free lane; a merge frees the lanes of its
other parents. Only the newest ``limit`` transactions are drawn (a history may hold tens of thousands), with
their links to older ones cut at the bottom edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

ROW = 32  # px between transactions
LANE = 20  # px between lanes
MARGIN = 12
LIMIT = 300


@dataclass(frozen=True, slots=True)
class Dot:
    gid: str
    x: int
    y: int
    node: dict[str, Any]  # the history node: kind, author, origin, created_at, parents
    head: bool


@dataclass(frozen=True, slots=True)
class Graph:
    dots: list[Dot]
    lines: list[str]  # SVG path data, child to parent
    width: int  # where the lanes end (the labels start there)
    height: int
    total: int  # transactions in the history (``len(dots)`` of them drawn)


def lanes(nodes: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Each transaction's lane, ``nodes`` oldest first (parents before children)."""
    tips: list[str | None] = []  # per lane: the transaction a child may continue, None when free
    lane_of: dict[str, int] = {}
    for node in nodes:
        parents = [p for p in node["parents"] if p in lane_of]
        lane = next((lane_of[p] for p in parents if tips[lane_of[p]] == p), None)
        if lane is None:
            lane = next((i for i, tip in enumerate(tips) if tip is None), len(tips))
            if lane == len(tips):
                tips.append(None)
        for parent in parents:  # a merge: the other parents' lanes end here
            if lane_of[parent] != lane and tips[lane_of[parent]] == parent:
                tips[lane_of[parent]] = None
        tips[lane] = node["gid"]
        lane_of[node["gid"]] = lane
    return lane_of


def graph(nodes: Sequence[dict[str, Any]], heads: Sequence[str], limit: int = LIMIT) -> Graph:
    """The drawing of ``nodes`` (oldest first), the newest ``limit`` of them, newest at the top."""
    shown = list(nodes[-limit:])
    lane_of = lanes(shown)
    place = {node["gid"]: (MARGIN + LANE * lane_of[node["gid"]], MARGIN + ROW * row)
             for row, node in enumerate(reversed(shown))}
    bottom = MARGIN + ROW * len(shown)
    dots = [Dot(n["gid"], *place[n["gid"]], node=n, head=n["gid"] in heads) for n in reversed(shown)]
    lines = []
    for node in shown:
        x, y = place[node["gid"]]
        for parent in node["parents"]:
            px, py = place.get(parent, (x, bottom))  # a parent not drawn: cut at the bottom
            bend = (py - y) / 2
            lines.append(f"M{x},{y} C{x},{y + bend:g} {px},{py - bend:g} {px},{py}")
    width = MARGIN * 2 + LANE * max(lane_of.values(), default=0)
    return Graph(dots, lines, width, bottom, len(nodes))
