"""GET /metrics, read with prometheus_client's own parser, against what the test did (issue 13)."""

from __future__ import annotations

import copy

from prometheus_client.parser import text_string_to_metric_families

from infrastructure.peers import Peer
from tests.api.conftest import Api, is_problem
from tests.factory import SigningPeer


def scrape(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = api.get("/metrics", headers=api.auth("root", role="admin"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def test_metrics_count_what_peers_sent_and_what_the_node_holds(api: Api, peer: SigningPeer):
    node = api.node
    node.peers.add(Peer(name=peer.name, base_url="http://127.0.0.1:9", send_types=("item",),
                        accept_types=("item",), created_at="2026-01-01T00:00:00Z"))
    node.peers.subscribe(peer.name)
    base = peer.create_item(markdown="base\n")
    left, right = peer.edit(base, markdown="left\n"), peer.edit(base, markdown="right\n")  # a conflict
    forged = copy.deepcopy(peer.create_item())
    forged["payload"]["title"] = "changed after signing"
    orphan = peer.edit({**peer.create_item(), "gid": "7d9f2a4b-7c1e-4b8a-b3d6-0e2f4a6c8b1d"}, markdown="x\n")
    node.federation.inbox(peer.name, [base, left, right, forged, base, orphan])
    api.create(api.auth(), title="local")  # stored here, queued for the subscriber

    metrics = scrape(api)

    received = {labels: value for (name, labels), value in metrics.items()
                if name == "fedsync_transactions_received_total"}
    assert received[(("reason", ""), ("status", "stored"))] == 3
    assert received[(("reason", ""), ("status", "duplicate"))] == 1
    assert sum(v for labels, v in received.items() if ("status", "refused") in labels) == 1
    assert sum(v for labels, v in received.items() if ("status", "pending") in labels) == 1
    assert metrics[("fedsync_conflicts_open", ())] == 1
    assert metrics[("fedsync_pending_transactions", ())] == 1
    assert metrics[("fedsync_transactions_stored", ())] == api.outbox() == 4
    assert metrics[("fedsync_projection_lag", ())] == 0
    assert metrics[("fedsync_peer_lag", (("peer", peer.name),))] == 4
    assert metrics[("fedsync_peer_breaker", (("peer", peer.name), ("state", "closed")))] == 1
    assert metrics[("fedsync_peer_breaker", (("peer", peer.name), ("state", "open")))] == 0
    created = (("method", "POST"), ("route", "/items"), ("status", "201"))
    assert metrics[("fedsync_http_request_duration_seconds_count", created)] == 1


def test_request_latency_is_labelled_by_route_template_not_by_raw_path(api: Api):
    headers = api.auth()
    item = api.create(headers)
    for _ in range(3):
        api.get(f"/items/{item['gid']}", headers=headers)
    api.get("/no/such/path")
    metrics = scrape(api)
    labels = (("method", "GET"), ("route", "/items/{gid}"), ("status", "200"))
    assert metrics[("fedsync_http_request_duration_seconds_count", labels)] == 3
    assert not any(item["gid"] in dict(key[1]).get("route", "") for key in metrics)
    assert metrics[("fedsync_http_request_duration_seconds_count",
                    (("method", "GET"), ("route", "unmatched"), ("status", "404")))] == 1


def test_metrics_need_an_admin_token_off_loopback(api: Api):
    assert is_problem(api.get("/metrics"), 401)  # the test client is not on loopback
    assert is_problem(api.get("/metrics", headers=api.auth("ann")), 403)
