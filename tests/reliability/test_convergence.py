"""Convergence under faults: random clusters, operations and network faults (Hypothesis).

3 to 5 in-process nodes (SQLite files, ES256 keys) on a topology (mesh,
hub, chain or random tree) exchange transactions over the in-process
transport, which drops, duplicates, delays and reorders messages while a
random schedule of local commands and sync steps (pull, push, gap fill,
retry of pending, late deliveries) runs, with hostile senders among them
(peers forging origins, post-dated scope changes, squatted gids and
deletions without the right: ``tests/reliability/hostile.py``), whose
transactions must be refused and stored nowhere. Then the faults stop, whatever is
still in flight arrives, and anti-entropy runs to quiescence: every node
pulls, pushes and retries until a whole round changes nothing and a round
of gid-diffs (``Syncer.reconcile``) finds nothing either. Each node must
then hold exactly what the oracle (``tests/reliability/model.py``) says it
may see, each transaction once, nothing pending that its sender could
complete (only what became invisible may wait for ever), the heads and
conflicts its transactions imply (the same on every node that holds the
same transactions of an item), and read models equal to a rebuild from its
own store. A failure shrinks to a short schedule, printed with its faults.

The nodes keep their stores in SQLite files, except that when the run has
PostgreSQL one node keeps its store there and is served by two instances
(as by two ``fedsync serve`` processes: each its own aggregate cache and
write lock, ``Cluster(twins=...)``): its commands, and the requests other
nodes send it, alternate between them.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from infrastructure.domains import same_domain
from infrastructure.node import Node
from tests.conftest import PG_ADMIN_URL, STORES, PostgresDatabases
from tests.reliability.cluster import Cluster, edges_of
from tests.reliability.conftest import LONG, count, record
from tests.reliability.digest import node_query, views
from tests.reliability.model import Expectation
from tests.reliability.operations import OPERATIONS, Runner
from tests.reliability.transport import Faults, Network

EXAMPLES = count("examples", 60, 2000)  # the CI run stays short (13 s idle); FEDSYNC_LONG=1 explores deep
RUN: Counter[str] = Counter()  # totals over the examples that ran to the end
FAULTS = {"dropped requests", "lost answers", "delayed deliveries", "duplicated deliveries"}
BURST, BURSTS = 10, (12 if LONG else 8)
# Creations, edits and sync steps come up more often than the rarer commands.
WEIGHTED = ("create", "edit", "pull", "push", *OPERATIONS, "create", "edit", "share", "late", "settle", "hostile")

operation = st.tuples(st.sampled_from(WEIGHTED), st.integers(0, 9), st.integers(0, 9), st.integers(0, 9))
# Bursts of operations, flattened: long schedules are common, yet the shrinker can drop
# a whole burst or single operations down to a one-operation schedule.
operations = st.lists(st.lists(operation, min_size=1, max_size=BURST), min_size=1, max_size=BURSTS).map(
    lambda bursts: [op for burst in bursts for op in burst])
faults = st.builds(
    Faults,
    drop_request=st.sampled_from([0.0, 0.2, 0.5]),
    drop_response=st.sampled_from([0.0, 0.2, 0.5]),
    delay=st.sampled_from([0.0, 0.3, 0.6]),
    duplicate=st.sampled_from([0.0, 0.3, 0.6]),
)


@st.composite
def scenarios(draw: st.DrawFn) -> dict:
    size = draw(st.integers(3, 5))
    topology = draw(st.sampled_from(["mesh", "hub", "chain", "tree"]))
    parents = draw(st.lists(st.integers(0, 9), min_size=size - 1, max_size=size - 1))
    return {"size": size, "topology": topology, "edges": sorted(edges_of(topology, size, parents)),
            "faults": draw(faults), "seed": draw(st.integers(0, 2**32 - 1)), "operations": draw(operations)}


def holdings(cluster: Cluster) -> dict[str, set[str]]:
    return {n.name: {r["gid"] for r in node_query(n)("SELECT gid FROM transactions")} for n in cluster.nodes}


def check_node(node: Node, holdings: dict[str, set[str]], lacking: set[str], expected: Expectation,
               exact: bool) -> None:
    held = holdings[node.name]
    describe = expected.transactions
    stored = node.app.recorder.max_notification_id() or 0
    assert len(held) == stored == len(node_query(node)("SELECT gid FROM tx_index")), "duplicated transactions"
    assert not lacking, f"{node.name} lacks {sorted((describe[g]['kind'], g) for g in lacking)}"
    assert held <= expected.may[node.name], \
        f"{node.name} holds what it may not see: {sorted(describe[g]['kind'] for g in held - expected.may[node.name])}"
    if exact:
        assert held == expected.may[node.name]
    for row in (row for sender in node.peers.pending_senders() for row in node.peers.pending(sender)):
        # Held for parents its sender will never serve: the entity became invisible to this node
        # between the child and the parents ("what was sent stays sent", the rest does not follow).
        assert row["gid"] in expected.may[node.name], f"{node.name} holds pending what it may not see"
        assert not expected.still_visible(holdings, row["sender"], node.name, row["gid"]), \
            f"{node.name} still holds pending {row['tx']['kind']} {row['gid']} its sender could complete"

    heads = expected.item_heads(held)
    rows = node_query(node)("SELECT item_gid, heads FROM documents")
    conflicts = {r["item_gid"] for r in node_query(node)("SELECT item_gid FROM conflicts")}
    assert {r["item_gid"]: sorted(orjson.loads(r["heads"])) for r in rows} == heads
    assert conflicts == {item for item, h in heads.items() if len(h) > 1}

    incremental = views(node_query(node))
    node.projector.rebuild()
    assert views(node_query(node)) == incremental, f"{node.name}: read models differ from a rebuild"


def check_shared_items(cluster: Cluster, held: dict[str, set[str]], expected: Expectation) -> None:
    """Nodes holding the same transactions of an item show the same heads and conflict."""
    seen: dict[tuple[str, frozenset[str]], tuple[str, Any]] = {}
    for node in cluster.nodes:
        for row in node_query(node)("SELECT d.item_gid, d.heads, d.checksum, c.item_gid AS conflict "
                                    "FROM documents d LEFT JOIN conflicts c ON c.item_gid = d.item_gid"):
            mine = frozenset(g for g in held[node.name] if expected.transactions[g]["entity_gid"] == row["item_gid"])
            shown = (row["heads"], row["checksum"], row["conflict"])
            first = seen.setdefault((row["item_gid"], mine), (node.name, shown))
            assert first[1] == shown, f"{row['item_gid']}: {first[0]} and {node.name} disagree"


@pytest.fixture(scope="module", autouse=True)
def figures() -> Iterator[None]:
    yield
    record("convergence", **dict(RUN))


def _bucket(n: int) -> str:
    return "0" if n == 0 else "1-4" if n < 5 else "5-19" if n < 20 else "20+"


@settings(max_examples=EXAMPLES, deadline=None, derandomize=not LONG, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@pytest.mark.slow(75)
@given(scenario=scenarios())
def test_nodes_converge_to_what_each_may_see_after_faults_stop(scenario: dict, tmp_path_factory) -> None:
    note(f"schedule: {scenario}")
    root: Path = tmp_path_factory.mktemp("convergence")
    network = Network(scenario["seed"], scenario["faults"])
    postgres = PostgresDatabases(PG_ADMIN_URL) if "postgres" in STORES else None
    urls = [postgres.create(), *[None] * (scenario["size"] - 1)] if postgres else None
    cluster = Cluster(root, scenario["size"], scenario["edges"], network, urls, twins=[0] if postgres else ())
    try:
        runner = Runner(cluster)
        network.faulty = True
        runner.run(scenario["operations"])
        network.faulty = False
        network.flush()
        rounds = cluster.quiesce(max_rounds=3 * scenario["size"] + 5)
        note(f"settled in {rounds} rounds; network: {dict(network.stats)}")

        expected = Expectation(runner.made, cluster.links, same_domain)
        held = holdings(cluster)
        lacking = expected.missing(held)
        exact = runner.revocations == 0 and runner.rescopes == 0
        relayed = sum(len(held[n.name]) - len(runner.made[n.name]) for n in cluster.nodes)
        event(f"transactions received by peers: {_bucket(relayed)}")
        event(f"faults injected: {_bucket(sum(v for k, v in network.stats.items() if k in FAULTS))}")
        event(f"operations: {_bucket(len(scenario['operations']))}")
        event(f"exact expectation: {exact}")
        refused = {gid: what for gid, (what, status) in runner.hostile.items() if status != "refused"}
        assert not refused, f"hostile transactions not refused: {refused}"
        for node in cluster.nodes:
            planted = held[node.name] & set(runner.hostile)
            assert not planted, f"{node.name} holds hostile {[runner.hostile[g][0] for g in planted]}"
            check_node(node, held, lacking[node.name], expected, exact)
        check_shared_items(cluster, held, expected)
        RUN.update({"examples": 1, "operations": len(scenario["operations"]), "exact": int(exact),
                    **Counter(f"refused: {what}" for what, _ in runner.hostile.values()),
                    "faults injected": sum(v for k, v in network.stats.items() if k in FAULTS),
                    "transactions received": relayed, "commands run by a twin instance": cluster.twin_turns})
    finally:
        cluster.close()
        if postgres is not None:
            postgres.drop_all()
        shutil.rmtree(root, ignore_errors=True)
