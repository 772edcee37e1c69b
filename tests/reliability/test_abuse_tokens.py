"""Editor tokens an admin can see and take back (issue 12, finding 10), on SQLite and PostgreSQL.

Every token is recorded when it is issued (never the token itself), listed by
``fedsync token list`` and ``GET /admin/tokens``, revoked by ``fedsync token
revoke`` and ``DELETE /admin/tokens/{jti}``; a revocation is checked on every
request from memory; a key rotation signs every editor out while what the
retired key signed still verifies; admin tokens live 12 hours by default.
The CLI runs in-process (typer's runner) against the node's store, and as a
real command against a real ``fedsync serve`` in the last tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from typer.testing import CliRunner, Result

from api.cli import app as cli
from domain.transaction import signing_input
from infrastructure import tokens
from infrastructure.local_cluster import NodeProcess
from infrastructure.node import Node
from infrastructure.settings import Settings
from infrastructure.signing import KeySet
from tests.api.conftest import Api, is_problem
from tests.e2e.conftest import Spawner
from tests.forkserver import fedsync as run_cli

HOUR = 3600


@pytest.fixture
def api(node: Node) -> Iterator[Api]:
    client = Api(node)
    yield client
    client.client.close()


@pytest.fixture
def spawn(store: Callable[[], str | None], tmp_path: Path) -> Iterator[Spawner]:
    spawner = Spawner(store, tmp_path)
    yield spawner
    spawner.close()


def fedsync(node: Node, *args: str) -> Result:
    """The ``fedsync`` command on the node's data dir and store (a wide terminal: no cut cells)."""
    env = {"FEDSYNC_DATA_DIR": str(node.settings.data_dir), "FEDSYNC_DATABASE_URL": node.settings.database_url,
           "COLUMNS": "400"}
    return CliRunner().invoke(cli, list(args), env=env)


def created(node: Node, *args: str) -> str:
    """A token made by ``fedsync token create``."""
    result = fedsync(node, "token", "create", *args)
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def refresh(api: Api) -> None:
    """What the serving process's background thread does every FEDSYNC_TOKEN_REFRESH_INTERVAL seconds."""
    api.client.app.state.tokens.gate.refresh()


def stored_text(node: Node) -> str:
    """Every value the node keeps about tokens, as one string."""
    with node.db.read() as cur:
        return json.dumps(cur.execute("SELECT * FROM editor_tokens").fetchall(), default=str)


# --- records and lists ---------------------------------------------------------------------
def test_every_issued_token_is_recorded_and_listed_but_never_stored(api: Api) -> None:
    token = created(api.node, "ann", "--team", "maths", "--label", "laptop of ann")
    admin = bearer(created(api.node, "root", "--role", "admin"))

    listed = fedsync(api.node, "token", "list", "--json")
    table = fedsync(api.node, "token", "list")
    served = api.get("/admin/tokens", headers=admin)

    assert listed.exit_code == 0, listed.output
    records = {r["jti"]: r for r in json.loads(listed.output)["tokens"]}
    ann = records[claims(token)["jti"]]
    assert (ann["subject"], ann["role"], ann["team"], ann["label"], ann["status"]) == \
        ("ann", "editor", "maths", "laptop of ann", "live")
    assert ann["issued_at"].endswith("Z") and ann["expires_at"] > ann["issued_at"]
    assert claims(token)["jti"] in table.output and "laptop of ann" in table.output
    assert served.status_code == 200, served.text
    assert {r["jti"]: r for r in served.json()["tokens"]} == records
    assert token not in stored_text(api.node) and token.split(".")[2] not in stored_text(api.node)


def test_an_editor_may_not_list_or_revoke_tokens(api: Api) -> None:
    ann = created(api.node, "ann")

    listing = api.get("/admin/tokens", headers=bearer(ann))
    revoking = api.delete(f"/admin/tokens/{claims(ann)['jti']}", headers=bearer(ann))

    assert is_problem(listing, 403) and is_problem(revoking, 403)
    assert api.get("/items", headers=bearer(ann)).status_code == 200


# --- lifetimes -------------------------------------------------------------------------------
def test_admin_tokens_live_twelve_hours_and_editor_tokens_thirty_days_by_default(api: Api) -> None:
    admin = claims(created(api.node, "root", "--role", "admin"))
    editor = claims(created(api.node, "ann"))
    merger = claims(created(api.node, "mia", "--role", "merge"))

    assert admin["exp"] - admin["iat"] == 12 * HOUR
    assert editor["exp"] - editor["iat"] == merger["exp"] - merger["iat"] == 30 * 24 * HOUR


def test_a_lifetime_given_overrides_the_default(api: Api) -> None:
    longer = claims(created(api.node, "root", "--role", "admin", "--ttl", "2d"))
    shorter = claims(created(api.node, "ann", "--expires", "90m"))

    assert longer["exp"] - longer["iat"] == 48 * HOUR
    assert shorter["exp"] - shorter["iat"] == 90 * 60


# --- revocation ------------------------------------------------------------------------------
def test_a_token_revoked_with_the_cli_is_refused_and_listed_as_revoked(api: Api) -> None:
    ann, bob = created(api.node, "ann"), created(api.node, "bob")
    assert api.get("/items", headers=bearer(ann)).status_code == 200  # verified and remembered

    revoked = fedsync(api.node, "token", "revoke", claims(ann)["jti"])
    refresh(api)

    assert revoked.exit_code == 0, revoked.output
    assert is_problem(api.get("/items", headers=bearer(ann)), 401)
    assert api.get("/items", headers=bearer(bob)).status_code == 200
    live = json.loads(fedsync(api.node, "token", "list", "--json").output)["tokens"]
    every = json.loads(fedsync(api.node, "token", "list", "--json", "--all").output)["tokens"]
    assert claims(ann)["jti"] not in {r["jti"] for r in live}
    assert {r["jti"]: r["status"] for r in every}[claims(ann)["jti"]] == "revoked"
    unknown = fedsync(api.node, "token", "revoke", "0" * 32)
    assert unknown.exit_code == 1 and "no token" in str(unknown.exception)  # main() prints it as one line


def test_a_token_revoked_through_the_api_is_refused_at_once(api: Api) -> None:
    ann = created(api.node, "ann")
    admin = bearer(created(api.node, "root", "--role", "admin"))
    assert api.get("/items", headers=bearer(ann)).status_code == 200

    revoked = api.delete(f"/admin/tokens/{claims(ann)['jti']}", headers=admin)
    again = api.delete(f"/admin/tokens/{claims(ann)['jti']}", headers=admin)
    unknown = api.delete(f"/admin/tokens/{'0' * 32}", headers=admin)
    malformed = api.delete("/admin/tokens/not%20a%20jti", headers=admin)

    assert revoked.status_code == 200, revoked.text
    assert (revoked.json()["status"], revoked.json()["revoked_by"]) == ("revoked", f"root@{api.node.name}")
    assert again.status_code == 200 and again.json()["revoked_at"] == revoked.json()["revoked_at"]
    assert is_problem(unknown, 404) and unknown.json()["type"] == "urn:fedsync:problem:token-not-found"
    assert is_problem(malformed, 422)
    assert is_problem(api.get("/items", headers=bearer(ann)), 401)  # no refresh needed: same process
    assert api.get("/admin/tokens", headers=admin).status_code == 200


def test_every_token_of_an_editor_is_revoked_at_once_even_one_never_recorded(api: Api) -> None:
    first, second, other = created(api.node, "ann"), created(api.node, "ann", "--team", "red"), created(api.node, "bob")
    epoch = api.node.tokens.epoch()
    legacy, _ = tokens.mint(api.node.keyring, api.node.name, "ann", now=epoch - 60)  # from before the records
    admin = bearer(created(api.node, "root", "--role", "admin"))

    by_cli = fedsync(api.node, "token", "revoke", "--all-for", "ann")
    refresh(api)
    by_api = api.post("/admin/tokens:revoke", json={"subject": "bob"}, headers=admin)

    assert by_cli.exit_code == 0, by_cli.output
    assert by_api.status_code == 200 and [r["jti"] for r in by_api.json()["tokens"]] == [claims(other)["jti"]]
    for token in (first, second, legacy, other):
        assert is_problem(api.get("/items", headers=bearer(token)), 401)
    assert api.get("/items", headers=bearer(created(api.node, "ann"))).status_code == 200  # new ones work


# --- tokens from before the records -----------------------------------------------------------------
def test_a_token_with_no_record_is_refused_unless_it_predates_the_records(api: Api) -> None:
    epoch = api.node.tokens.epoch()
    unrecorded, _ = tokens.mint(api.node.keyring, api.node.name, "mallory", role="admin")
    legacy, legacy_claims = tokens.mint(api.node.keyring, api.node.name, "ann", now=epoch - 60)
    admin = bearer(created(api.node, "root", "--role", "admin"))

    refused = api.get("/admin/tokens", headers=bearer(unrecorded))
    accepted = api.get("/items", headers=bearer(legacy))
    listed = {r["jti"]: r for r in api.get("/admin/tokens", headers=admin).json()["tokens"]}
    revoked = api.delete(f"/admin/tokens/{legacy_claims['jti']}", headers=admin)

    assert is_problem(refused, 401) and "no record" in refused.json()["detail"]
    assert accepted.status_code == 200
    assert listed[legacy_claims["jti"]]["legacy"] is True and listed[legacy_claims["jti"]]["subject"] == "ann"
    assert revoked.status_code == 200
    assert is_problem(api.get("/items", headers=bearer(legacy)), 401)


def test_records_of_tokens_expired_more_than_thirty_days_ago_are_pruned_and_those_tokens_stay_refused(
        api: Api) -> None:
    """Each web sign-in adds a record: without pruning the table only grew."""
    now, day = time.time(), 24 * HOUR
    old = api.node.tokens.issue("ann", lifetime=timedelta(hours=8), now=now - 31 * day)  # expired 31 days ago
    recent = api.node.tokens.issue("ann", lifetime=timedelta(hours=8), now=now - 29 * day)  # 29 days ago
    live = api.node.tokens.issue("ann", now=now)
    admin = bearer(created(api.node, "root", "--role", "admin"))

    pruned = api.node.tokens.prune()

    listed = {r["jti"] for r in api.get("/admin/tokens", params={"all": True}, headers=admin).json()["tokens"]}
    assert pruned == 1 and claims(old)["jti"] not in listed
    assert {claims(recent)["jti"], claims(live)["jti"]} <= listed
    refused = api.get("/items", headers=bearer(old))
    assert is_problem(refused, 401) and "expired" in refused.json()["detail"]  # not 'no record'
    assert api.get("/items", headers=bearer(live)).status_code == 200
    assert api.node.tokens.prune() == 0


def test_a_record_does_not_lend_its_jti_to_other_claims(api: Api) -> None:
    token = created(api.node, "ann")
    promoted = dict(claims(token), role="admin")
    key = api.node.keyring.active
    forged = jwt.encode(promoted, key.private_key, algorithm=key.alg, headers={"kid": key.kid})

    response = api.get("/admin/tokens", headers=bearer(forged))

    assert is_problem(response, 401)


# --- key rotation ----------------------------------------------------------------------------
def test_a_key_rotation_signs_every_editor_out_and_what_the_old_key_signed_still_verifies(api: Api) -> None:
    ann = created(api.node, "ann")
    item = api.create(bearer(ann))
    assert api.get(f"/items/{item['gid']}", headers=bearer(ann)).status_code == 200
    old_kid = api.node.keyring.active.kid

    rotated = fedsync(api.node, "keys", "rotate")
    fresh = created(api.node, "ann")

    assert rotated.exit_code == 0, rotated.output
    assert is_problem(api.get(f"/items/{item['gid']}", headers=bearer(ann)), 401)
    assert api.get(f"/items/{item['gid']}", headers=bearer(fresh)).status_code == 200
    version = api.get(f"/items/{item['gid']}/versions/{item['head']}", headers=bearer(fresh)).json()
    published = KeySet.from_jwks(api.get("/.well-known/jwks.json").json())
    assert published.verify(version["signature"], signing_input(version)) == old_kid != api.node.keyring.active.kid
    statuses = {r["jti"]: r["status"] for r in json.loads(fedsync(api.node, "token", "list", "--json", "--all")
                                                          .output)["tokens"]}
    assert statuses[claims(ann)["jti"]] == "key-retired" and statuses[claims(fresh)["jti"]] == "live"


# --- a real server ---------------------------------------------------------------------------
def command(node: NodeProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """The real ``fedsync`` command on a served node's data dir and store."""
    env = dict(os.environ, FEDSYNC_DATA_DIR=str(node.data_dir), COLUMNS="400")
    env.pop("FEDSYNC_DATABASE_URL", None)
    if node.database_url:
        env["FEDSYNC_DATABASE_URL"] = node.database_url
    result = run_cli(*args, env=env, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


REFRESH_INTERVAL = Settings().token_refresh_interval  # the default (2 s): the bound docs/decisions/tokens.md states


def test_a_cli_revocation_reaches_a_running_server_within_the_refresh_interval(spawn: Spawner) -> None:
    node = spawn("a")
    token = command(node, "token", "create", "ann").stdout.strip()
    other = command(node, "token", "create", "bob").stdout.strip()
    with httpx.Client(base_url=node.base_url, timeout=10) as http:
        assert http.get("/items", headers=bearer(token)).status_code == 200  # verified and remembered

        command(node, "token", "revoke", claims(token)["jti"])
        revoked_at = time.monotonic()
        status = 200
        while status == 200 and time.monotonic() < revoked_at + 10:  # bounded
            status = http.get("/items", headers=bearer(token)).status_code
            time.sleep(0.05)
        took = time.monotonic() - revoked_at

        assert status == 401
        assert took < REFRESH_INTERVAL + 2.0, took  # one interval, and a request on a loaded machine
        assert http.get("/items", headers=bearer(other)).status_code == 200

        command(node, "keys", "rotate")
        assert http.get("/items", headers=bearer(other)).status_code == 401  # at once: the keyring file changed
