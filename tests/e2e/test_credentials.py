"""Two ``Authorization`` headers on one request, against a real ``fedsync serve`` (both stores).

Credentials are read by the anonymous rate limit (the first header), the
body limit (which authenticates a peer's batch) and the routes; two headers
could name two callers there. Any request with more than one is refused
with ``400 ambiguous-credentials`` before anything reads one, and changes
nothing.
"""

from __future__ import annotations

import httpx
import pytest

from infrastructure.local_cluster import NodeProcess
from tests.e2e.conftest import Spawner


@pytest.fixture
def served(spawn: Spawner) -> NodeProcess:
    return spawn("a")


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:fedsync:problem:ambiguous-credentials"


def test_a_request_with_two_authorization_headers_is_refused_and_changes_nothing(served: NodeProcess) -> None:
    ann, admin = f"Bearer {served.token('ann')}", f"Bearer {served.token('root', role='admin')}"
    with httpx.Client(base_url=served.base_url, timeout=30) as http:
        item = http.post("/items", json={"title": "t", "markdown": "one\n"}, headers={"Authorization": ann}).json()

        for pair in ([ann, admin], [ann, ann], [ann, "Bearer forged"], ["Bearer forged", ann]):
            both = [("Authorization", value) for value in pair]
            _refused(http.patch(f"/items/{item['gid']}", json={"markdown": "two\n"},
                                headers=[*both, ("If-Match", f'"{item["head"]}"')]))
            _refused(http.get("/items", headers=both))
            _refused(http.get("/admin/peers", headers=both))
            _refused(http.post("/federation/inbox", json={"transactions": []}, headers=both))

        after = http.get(f"/items/{item['gid']}", headers={"Authorization": ann})
        assert after.status_code == 200 and after.json()["markdown"] == "one\n" and after.json()["head"] == item["head"]
        assert http.get("/items", headers={"Authorization": ann}).status_code == 200  # one header: as ever
