"""Liveness, readiness and the front page (issue 13)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from api.docs import STATIC
from infrastructure.node import Node, init_node
from infrastructure.settings import Settings
from tests.api.conftest import Api, is_problem
from tests.conftest import STORES, database_urls
from tests.factory import AUTHOR


def test_healthz_answers_without_credentials(api: Api):
    response = api.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_says_the_store_answers_and_the_views_are_caught_up(api: Api):
    api.create(api.auth(), title="one")
    response = api.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready" and body["store"] == "ok"
    assert body["events"] == body["views"] == api.outbox() and body["behind"] == 0


def test_readyz_is_503_when_the_views_lag_far_behind_the_store(api: Api, node: Node):
    node.app.recorder.in_commit = None  # events stored, never projected (as after a crash, or a broken view)
    node.app.after_save = lambda: None
    for i in range(1001):
        node.app.create_item(author=AUTHOR, title=f"t{i}", markdown="m\n")
    response = api.get("/readyz")
    assert is_problem(response, 503), response.text
    assert "1001 events behind" in response.json()["detail"]
    assert api.get("/healthz").status_code == 200  # up, though not ready


@pytest.fixture(params=[kind for kind in STORES if kind == "postgres"])
def postgres_api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    """A PostgreSQL node only: a database server can stop answering; an SQLite file the process holds open
    cannot go away under it, so there is no SQLite variant of the test below."""
    urls = database_urls(request.param)
    settings = Settings(data_dir=tmp_path / "node", database_url=next(urls)())
    init_node(settings, "https://a.example.org")
    node = Node.open(settings)
    api = Api(node)
    try:
        yield api
    finally:
        api.client.close()
        node.close()
        next(urls, None)  # drops the database


def test_readyz_is_503_when_the_store_does_not_answer(postgres_api: Api):
    api = postgres_api
    url = api.node.settings.database_url
    assert url is not None
    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
    try:
        response = api.get("/readyz")
        assert is_problem(response, 503), response.text
        assert "the store" in response.json()["detail"]
        assert response.headers["retry-after"] == "5"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    for _ in range(50):  # bounded: the pool reconnects
        if api.get("/readyz").status_code == 200:
            break
    assert api.get("/readyz").status_code == 200


def test_the_front_page_links_the_docs_and_the_probes(api: Api, node: Node):
    response = api.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    for link in ("/docs", "/redoc", "/healthz", "/readyz", "/.well-known/fedsync"):
        assert f'href="{link}"' in response.text
    assert node.name in response.text
    browser = api.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, follow_redirects=False)
    assert browser.status_code == 303 and browser.headers["location"] == "/ui"  # a browser goes to the pages


def test_the_api_docs_load_nothing_from_outside_the_node(api: Api):
    for path, script_name in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        page = api.get(path)
        assert page.status_code == 200 and f"{STATIC}/{script_name}" in page.text
        assert "cdn" not in page.text.lower() and "https://" not in page.text, page.text
        script = api.get(f"{STATIC}/{script_name}")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        assert len(script.content) > 100_000
    assert api.get(f"{STATIC}/swagger-ui.css").status_code == 200
    assert api.get("/openapi.json").status_code == 200
