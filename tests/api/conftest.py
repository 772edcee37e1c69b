"""The editor API in-process (FastAPI's test client) on a node per store."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from infrastructure.node import Node

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from api.app import create_app  # noqa: E402


class Api:
    """A test client on one node, with tokens for named editors."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.client = TestClient(create_app(node.settings, node), raise_server_exceptions=False)

    def token(self, name: str = "ann", *, role: str = "editor", team: str | None = None,
              lifetime: timedelta = timedelta(hours=1), now: float | None = None) -> str:
        return self.node.tokens.issue(name, role=role, team=team, lifetime=lifetime, now=now)

    def auth(self, name: str = "ann", **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(name, **kwargs)}"}

    def outbox(self) -> int:
        """How many transactions the node stored: its outbox length."""
        return self.node.app.recorder.max_notification_id() or 0

    def create(self, headers: dict[str, str], title: str = "A title", markdown: str = "text\n",
               **fields: Any) -> dict[str, Any]:
        response = self.client.post("/items", json={"title": title, "markdown": markdown, **fields}, headers=headers)
        assert response.status_code == 201, response.text
        return response.json()

    def edit(self, headers: dict[str, str], item: dict[str, Any], **fields: Any) -> dict[str, Any]:
        response = self.client.patch(f"/items/{item['gid']}", json={"parent": item["head"], **fields},
                                     headers=headers)
        assert response.status_code == 200, response.text
        return response.json()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        return getattr(self.client, name)  # get, post, patch, delete, ...


@pytest.fixture
def api(node: Node) -> Iterator[Api]:
    client = Api(node)
    yield client
    client.client.close()


def is_problem(response: Any, status: int) -> bool:
    """An RFC 9457 problem document with this status."""
    body = response.json()
    return (response.status_code == status
            and response.headers["content-type"].startswith("application/problem+json")
            and body["status"] == status
            and all(isinstance(body.get(k), str) and body[k] for k in ("type", "title", "detail")))
