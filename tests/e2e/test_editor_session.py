"""An editor session against a real `fedsync serve` process over HTTP (both stores).

The node is set up with the CLI (`fedsync init`, `fedsync token create`) and
served by `fedsync serve` on a free port of 127.0.0.1; every wait is bounded
and the process is always stopped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from infrastructure.local_cluster import free_port
from tests.forkserver import fedsync as run_cli

READY_TIMEOUT = 30.0


def fedsync(env: dict[str, str], *args: str) -> str:
    result = run_cli(*args, env=env, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@dataclass
class Served:
    url: str
    env: dict[str, str]

    def token(self, name: str, *options: str) -> dict[str, str]:
        token = fedsync(self.env, "token", "create", name, *options).strip()
        return {"Authorization": f"Bearer {token}"}


@contextmanager
def serve(database_url: str | None, tmp_path: Path) -> Iterator[Served]:
    port = free_port()
    env = dict(os.environ, FEDSYNC_DATA_DIR=str(tmp_path / "node"), FEDSYNC_HOST="127.0.0.1",
               FEDSYNC_PORT=str(port))
    env.pop("FEDSYNC_DATABASE_URL", None)
    if database_url:
        env["FEDSYNC_DATABASE_URL"] = database_url
    fedsync(env, "init", "--base-url", f"http://127.0.0.1:{port}")
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - handed to the child process
    process = subprocess.Popen([sys.executable, "-m", "api", "serve", "--no-access-log"], env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + READY_TIMEOUT
        while True:  # bounded by the deadline
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{url}/openapi.json", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "fedsync serve did not answer in time"
            time.sleep(0.1)
        yield Served(url, env)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        log.close()
    assert process.returncode in (0, -15), (tmp_path / "serve.log").read_text()


@pytest.fixture(scope="module")
def served(module_store: Callable[[], str | None], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One node for the tests that look only at the items they make themselves."""
    with serve(module_store(), tmp_path_factory.mktemp("served")) as node:
        yield node


@pytest.fixture
def fresh_served(store: Callable[[], str | None], tmp_path: Path) -> Iterator[Served]:
    """A node of its own, for a test that looks at everything an editor sees."""
    with serve(store(), tmp_path) as node:
        yield node


def test_editor_session_over_http(served: Served) -> None:
    ann = served.token("ann", "--team", "red")
    with httpx.Client(base_url=served.url, timeout=10.0) as http:
        # create, edit, stale edit
        target = http.post("/items", json={"title": "Target", "markdown": "# Target\n"}, headers=ann)
        assert target.status_code == 201, target.text
        target = target.json()
        edited = http.patch(f"/items/{target['gid']}", json={"markdown": "# Target v2\n"},
                            headers={**ann, "If-Match": f'"{target["head"]}"'})
        assert edited.status_code == 200 and edited.headers["ETag"].startswith(f'"{edited.json()["head"]}.')
        stale = http.patch(f"/items/{target['gid']}", json={"parent": target["head"], "markdown": "late"},
                           headers=ann)
        assert stale.status_code == 409 and stale.headers["content-type"] == "application/problem+json"
        assert stale.json()["heads"] == [edited.json()["head"]]

        # tag, share
        tag = http.post("/tags", json={"name": "maths"}, headers=ann).json()
        tagged = http.patch(f"/items/{target['gid']}", json={"parent": edited.json()["head"], "tags": [tag["gid"]]},
                            headers=ann)
        assert tagged.json()["tags"] == [{"gid": tag["gid"], "name": "maths"}]
        share = http.post(f"/items/{target['gid']}/shares",
                          json={"peer": "urn:domain:b.example.net", "permission": "read", "allow_unknown": True},
                          headers=ann)  # a node this one has not heard of yet: said so
        assert share.status_code == 201
        assert [s["gid"] for s in http.get(f"/items/{target['gid']}/shares", headers=ann).json()["shares"]] == [
            share.json()["gid"]]

        # fork, lineage
        fork = http.post(f"/items/{target['gid']}/forks", json={"title": "Fork"}, headers=ann).json()
        assert fork["forked_from"] == [target["gid"]]
        lineage = http.get(f"/items/{target['gid']}/lineage", headers=ann).json()["forks"]
        assert [f["gid"] for f in lineage] == [fork["gid"]]

        # the three cross-reference cases, escaping, backlinks
        remote, missing = str(uuid.uuid4()), str(uuid.uuid4())
        markdown = (f"<script>alert(1)</script> {{item:{target['gid']}}} "
                    f"{{item:{remote}:https://hub.example.org/items/{remote}}} {{item:{missing}}}")
        page = http.post("/items", json={"title": "Links", "markdown": markdown}, headers=ann).json()
        rendered = http.get(f"/items/{page['gid']}/rendered", headers=ann).json()
        assert [r["status"] for r in rendered["references"]] == ["local", "fallback", "unresolved"]
        assert "<script>" not in rendered["html"] and "&lt;script&gt;" in rendered["html"]
        backlinks = http.get(f"/items/{target['gid']}/backlinks", headers=ann).json()["items"]
        assert [i["gid"] for i in backlinks] == [page["gid"]]

        # delete, history DAG
        head = http.get(f"/items/{target['gid']}", headers=ann).json()["head"]
        deleted = http.delete(f"/items/{target['gid']}", headers={**ann, "If-Match": f'"{head}"'})
        assert deleted.status_code == 200 and deleted.json()["deleted"] is True
        assert http.get(f"/items/{target['gid']}", headers=ann).status_code == 404
        history = http.get(f"/items/{target['gid']}/history?include_deleted=true", headers=ann).json()
        assert [n["kind"] for n in history["nodes"]] == ["item.created", "item.edited", "item.edited",
                                                        "item.deleted"]
        assert all(n["parents"] == [prev["gid"]] for prev, n in zip(history["nodes"], history["nodes"][1:],
                                                                     strict=False))


def test_other_editors_never_see_owner_or_other_team_items_over_http(served: Served) -> None:
    ann, bob = served.token("ann", "--team", "red"), served.token("bob", "--team", "blue")
    with httpx.Client(base_url=served.url, timeout=10.0) as http:
        owner = http.post("/items", json={"title": "mine", "scope": "OWNER"}, headers=ann).json()
        team = http.post("/items", json={"title": "ours", "scope": "TEAM"}, headers=ann).json()

        listed = [i["gid"] for i in http.get("/items", headers=bob).json()["items"]]
        answers = [http.get(f"/items/{item['gid']}{suffix}", headers=bob).status_code
                   for item in (owner, team) for suffix in ("", "/history", "/rendered", "/backlinks", "/lineage")]

    assert owner["gid"] not in listed and team["gid"] not in listed
    assert set(answers) == {404}


def test_bad_requests_over_http_are_problems(fresh_served: Served) -> None:
    expired = fresh_served.token("ann", "--expires", "1s")
    minted = time.monotonic()
    ann = fresh_served.token("ann")
    time.sleep(max(0.0, 7 - (time.monotonic() - minted)))  # past the 5 s leeway
    with httpx.Client(base_url=fresh_served.url, timeout=10.0) as http:
        answers = {
            "missing token": http.post("/items", json={"title": "x"}),
            "expired token": http.post("/items", json={"title": "x"}, headers=expired),
            "malformed JSON": http.post("/items", content=b"{", headers={**ann, "Content-Type": "application/json"}),
            "oversized body": http.post("/items", json={"title": "x", "markdown": "a" * (2 * 1024 * 1024)},
                                        headers=ann),
        }
        listed = http.get("/items", headers=ann).json()["items"]

    assert {k: r.status_code for k, r in answers.items()} == {
        "missing token": 401, "expired token": 401, "malformed JSON": 400, "oversized body": 413}
    assert all(r.headers["content-type"] == "application/problem+json" for r in answers.values())
    assert listed == []
