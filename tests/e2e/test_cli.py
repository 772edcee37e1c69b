"""The ``fedsync`` command as an admin runs it: identity kept across ``init``, the store remembered, user errors
as one line and a non-zero exit code."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.conftest import PG_ADMIN_URL
from tests.e2e.conftest import Spawner, link
from tests.forkserver import fedsync as run_cli


def fedsync(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process, with no FEDSYNC_* variable but the data dir, at 80 columns."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FEDSYNC_")}
    return run_cli(*args, env={**clean, "FEDSYNC_DATA_DIR": str(data_dir), "COLUMNS": "80", **(env or {})},
                   timeout=120)


def on_a_terminal(data_dir: Path, *args: str, columns: int = 80) -> str:
    """The CLI's output (stdout and stderr) on a pseudo-terminal ``columns`` wide, without colours."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FEDSYNC_")}
    leader, follower = pty.openpty()
    with subprocess.Popen([sys.executable, "-m", "api", *args], stdin=subprocess.DEVNULL, stdout=follower,
                          stderr=follower, env={**clean, "FEDSYNC_DATA_DIR": str(data_dir), "COLUMNS": str(columns),
                                                "TERM": "xterm"}) as child:
        os.close(follower)
        output = b""
        while True:  # bounded: the child ends (and the terminal with it) within the wait below
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed
                break
            if not chunk:
                break
            output += chunk
        assert child.wait(timeout=120) == 0, output
    os.close(leader)
    return re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", output.decode()).replace("\r\n", "\n")


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("fedsync: "), result.stderr
    return lines[0]


def pem(path: Path) -> Path:
    key = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


@pytest.mark.slow
def test_init_again_keeps_the_identity_and_refuses_to_change_it_without_force(tmp_path: Path,
                                                                             store: Callable[[], str | None]):
    data, url = tmp_path / "hub", store()
    store_args = ["--database-url", url] if url else []
    ok(fedsync(data, "init", "--base-url", "https://hub.example.org", *store_args))
    config = (data / "config.json").read_text()
    keys = ok(fedsync(data, "keys", "list"))

    assert "urn:domain:hub.example.org" in ok(fedsync(data, "init"))  # the README's order: init, then init again
    assert (data / "config.json").read_text() == config

    other_key = pem(tmp_path / "other.pem")
    for change in (["--base-url", "https://elsewhere.example.org"], ["--name", "elsewhere.example.org"],
                   ["--key", str(other_key)], ["--database-url", "postgresql://127.0.0.1:5432/another"]):
        message = one_line_error(fedsync(data, "init", *change))
        assert "--force" in message and "urn:domain:hub.example.org" in message
    assert (data / "config.json").read_text() == config
    assert ok(fedsync(data, "keys", "list")) == keys

    moved = ok(fedsync(data, "init", "--base-url", "https://hub2.example.org", "--force"))
    assert "urn:domain:hub2.example.org" in moved
    assert json.loads((data / "config.json").read_text())["name"] == "urn:domain:hub2.example.org"


def test_keys_import_is_the_explicit_way_to_change_the_active_key(tmp_path: Path):
    data = tmp_path / "node"
    ok(fedsync(data, "init"))
    before = ok(fedsync(data, "keys", "list"))
    imported = ok(fedsync(data, "keys", "import", str(pem(tmp_path / "new.pem"))))
    kid = imported.split()[2]
    listing = ok(fedsync(data, "keys", "list"))
    assert f"{kid}  EdDSA  active" in listing
    assert before.split()[0] in listing  # the old key stays published, retired
    jwks = json.loads(ok(fedsync(data, "keys", "list", "--json")))
    assert {(key["kid"], key["status"]) for key in jwks["keys"]} == {(kid, "active"), (before.split()[0], "retired")}


def test_the_cli_opens_the_store_the_node_was_set_up_on_without_the_environment_variable(
        tmp_path: Path, store: Callable[[], str | None]):
    data, url = tmp_path / "hub", store()
    ok(fedsync(data, "init", "--base-url", "https://hub.example.org", *(["--database-url", url] if url else [])))
    ok(fedsync(data, "token", "create", "ann"))  # no FEDSYNC_DATABASE_URL from here on
    listing = json.loads(ok(fedsync(data, "token", "list", "--json")))["tokens"]
    assert [token["subject"] for token in listing] == ["ann"]
    assert (data / "fedsync.sqlite").exists() == (url is None)  # no empty SQLite store made beside PostgreSQL
    if url:  # the environment still overrides the config: another (empty) store
        elsewhere = {"FEDSYNC_DATABASE_URL": store()}
        assert ok(fedsync(data, "token", "list", "--json", env=elsewhere)) != ok(fedsync(data, "token", "list",
                                                                                         "--json"))


def test_the_config_file_is_readable_by_its_owner_only(tmp_path: Path):
    data = tmp_path / "node"
    ok(fedsync(data, "init"))
    assert (data / "config.json").stat().st_mode & 0o077 == 0  # it may hold a database password


def test_init_on_a_database_that_does_not_exist_says_so_at_once_and_leaves_nothing_behind(tmp_path: Path):
    data = tmp_path / "node"
    server = urlsplit(PG_ADMIN_URL)
    url = f"postgresql://{server.username}:secret@{server.hostname}:{server.port}/fedsync_no_such_database"
    started = time.monotonic()
    message = one_line_error(fedsync(data, "init", "--database-url", url))
    assert time.monotonic() - started < 15
    assert "does not exist" in message and "secret" not in message
    assert not (data / "config.json").exists() and not (data / "keys").exists()


@pytest.mark.slow
def test_sync_with_an_unreachable_peer_exits_non_zero(spawn: Spawner):
    a, b = spawn.many("a", "b")
    link(a, b, send=("item",), accept=("item",), relay=False)
    env = {"FEDSYNC_DATABASE_URL": a.database_url} if a.database_url else {}
    listed = json.loads(ok(fedsync(a.data_dir, "peer", "list", "--json", env=env)))["peers"]
    assert [(peer["name"], peer["base_url"], peer["breaker"]) for peer in listed] == [(b.name, b.base_url, "closed")]
    scraped = httpx.get(f"{a.base_url}/metrics", timeout=30)  # Prometheus on the same host: no token needed
    assert scraped.status_code == 200 and f'fedsync_peer_lag{{peer="{b.name}"}}' in scraped.text
    short = b.name.removeprefix("urn:domain:")  # a peer may be named short: its host, or its base URL
    assert ok(fedsync(a.data_dir, "peer", "retry", short, env=env)).strip() == f"{b.name}: retry now"
    assert f"{b.name}: 0 received" in ok(fedsync(a.data_dir, "sync", b.base_url, env=env))
    healthy = ok(fedsync(a.data_dir, "doctor", env=env))
    assert f"ok   peer {b.name} answers at {b.base_url}" in healthy and "FAIL" not in healthy
    a.stop()
    b.stop()  # the peer is gone
    result = fedsync(a.data_dir, "sync", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert b.name in result.stderr
    doctor = fedsync(a.data_dir, "doctor", env=env)
    assert doctor.returncode == 1 and f"FAIL peer {b.name}: {b.base_url} does not answer" in doctor.stdout
    ok(fedsync(a.data_dir, "sync", "--help"))


USER_ERRORS = [
    ["peer", "retry", "urn:domain:nowhere.example.org"],
    ["peer", "remove", "urn:domain:nowhere.example.org"],
    ["sync", "urn:domain:nowhere.example.org"],
    ["token", "revoke", "no-such-jti"],
    ["token", "create", "ann", "--role", "king"],
    ["keys", "revoke", "no-such-kid"],
    ["keys", "trust", "urn:domain:x.example.org", "--relay", "urn:domain:y.example.org"],
    ["keys", "import", "/no/such/key.pem"],
    ["init", "--key", "/no/such/key.pem"],
    ["init", "--alg", "ROT13"],
    ["init", "--base-url", "ftp://hub.example.org"],
    ["peer", "add", "http://127.0.0.1:9"],
]


@pytest.mark.slow(40)
def test_every_user_error_is_one_line_and_a_non_zero_exit(tmp_path: Path):
    data = tmp_path / "node"
    ok(fedsync(data, "init"))
    config = (data / "config.json").read_text()
    for args in USER_ERRORS:  # one node for all: none of them may change it
        one_line_error(fedsync(data, *args))
    assert (data / "config.json").read_text() == config


def test_an_uninitialised_data_dir_is_one_line_too(tmp_path: Path):
    assert "fedsync init" in one_line_error(fedsync(tmp_path / "nothing", "peer", "list"))


def test_a_broken_config_is_one_line_that_says_what_is_wrong(tmp_path: Path):
    data = tmp_path / "node"
    ok(fedsync(data, "init"))
    (data / "config.json").write_text('{"name": "urn:domain:x.example.org"')  # cut off
    assert "not a valid node config" in one_line_error(fedsync(data, "peer", "list"))
    (data / "config.json").write_text('{"name": "urn:domain:x.example.org", "colour": "red"}')
    message = one_line_error(fedsync(data, "token", "list"))
    assert "base_url" in message and "colour" in message


@pytest.mark.slow
def test_on_a_terminal_a_command_says_which_store_and_a_wide_table_becomes_records(tmp_path: Path):
    data = tmp_path / "node"
    ok(fedsync(data, "init"))
    for name in ("ann", "bob"):
        ok(fedsync(data, "token", "create", name, "--team", "maths", "--label", f"{name}'s laptop"))
    records = json.loads(ok(fedsync(data, "token", "list", "--json")))["tokens"]

    narrow = on_a_terminal(data, "token", "list", columns=80)
    wide = on_a_terminal(data, "token", "list", columns=200)

    lines = narrow.splitlines()
    assert lines[0] == f"node urn:domain:127.0.0.1:8000, store {data / 'fedsync.sqlite'}"
    assert all(len(line) <= 80 for line in lines[1:]), narrow  # (the store line holds a long path)
    for record in records:  # every value whole, none cut to fit
        assert f"    jti: {record['jti']}" in lines and f"  label: {record['label']}" in lines
        assert f"expires: {record['expires_at']}" in lines, narrow
    assert all(record["jti"] in wide and record["expires_at"] in wide for record in records)
    assert "┃ jti" in wide and "jti:" not in wide  # it fits: a table
    assert "node urn:domain" not in ok(fedsync(data, "token", "list"))  # scripts read the output alone


def test_version(tmp_path: Path):
    assert ok(fedsync(tmp_path, "--version")).startswith("fedsync ")


def test_peer_add_says_what_happened_when_the_subscription_fails_and_refuses_tags_without_it(spawn: Spawner):
    a, b = spawn.many("a", "b")  # b does not know a: it refuses a's subscription (401)
    env = {"FEDSYNC_DATABASE_URL": a.database_url} if a.database_url else {}

    refused = fedsync(a.data_dir, "peer", "add", b.base_url, "--tags", "maths", env=env)

    assert refused.returncode == 1 and refused.stderr.strip() == \
        "fedsync: --tags filters a subscription: give --subscribe too", refused.stdout + refused.stderr
    assert json.loads(ok(fedsync(a.data_dir, "peer", "list", "--json", env=env)))["peers"] == []  # nothing stored

    half = fedsync(a.data_dir, "peer", "add", b.base_url, "--subscribe", env=env)

    assert half.returncode == 1, half.stdout + half.stderr
    assert half.stdout.startswith(f"peered with {b.name}"), half.stdout
    message = half.stderr.strip()
    assert len(message.splitlines()) == 1 and message.startswith(f"fedsync: peered with {b.name}, but the "
                                                                 "subscription failed: POST "), message
    assert " 401 " in message and message.endswith("run the same command again"), message
    assert [p["name"] for p in json.loads(ok(fedsync(a.data_dir, "peer", "list", "--json", env=env)))["peers"]] \
        == [b.name]  # the peering stays


def test_the_admin_api_says_the_same_when_the_subscription_fails_and_refuses_tags_without_it(spawn: Spawner):
    a, b = spawn.many("a", "b")  # b does not know a
    with httpx.Client(base_url=a.base_url, timeout=30,
                      headers={"Authorization": f"Bearer {a.token('root', role='admin')}"}) as admin:
        refused = admin.post("/admin/peers", json={"base_url": b.base_url, "tags": ["maths"]})
        assert refused.status_code == 422 and "give subscribe: true too" in refused.text, refused.text
        assert admin.get("/admin/peers").json()["peers"] == []  # nothing stored

        half = admin.post("/admin/peers", json={"base_url": b.base_url, "subscribe": True})

        assert half.status_code == 502 and half.json()["type"] == "urn:fedsync:problem:peer-unreachable", half.text
        assert half.json()["detail"].startswith(f"peered with {b.name}, but the subscription failed: POST ")
        assert [p["name"] for p in admin.get("/admin/peers").json()["peers"]] == [b.name]  # the peering stays
