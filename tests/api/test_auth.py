"""Editor tokens: made by `fedsync token create`, verified on every request, roles and teams."""

from __future__ import annotations

import time
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from api.cli import app as cli
from infrastructure import tokens
from infrastructure.node import Node
from infrastructure.signing import Keyring
from infrastructure.signing.jwk import public_jwk
from tests.api.conftest import Api, is_problem


def test_cli_token_names_the_author_of_transactions(api: Api) -> None:
    store = ["--database-url", api.node.settings.database_url] if api.node.settings.database_url else []
    result = CliRunner().invoke(cli, ["token", "create", "ann", "--team", "red", "--expires", "2h",
                                      "--data-dir", str(api.node.settings.data_dir), *store])
    token = result.output.strip()

    created = api.post("/items", json={"title": "x"}, headers={"Authorization": f"Bearer {token}"})

    assert result.exit_code == 0, result.output
    assert created.status_code == 201
    assert created.json()["author"] == f"ann@{api.node.name}"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["sub"], claims["team"], claims["role"]) == ("ann", "red", "editor")
    assert claims["exp"] - claims["iat"] == 7200
    assert jwt.get_unverified_header(token)["kid"] == api.node.keyring.active.kid


@pytest.mark.parametrize("args", [["bad name"], ["ann", "--role", "owner"], ["ann", "--expires", "soon"],
                                  ["ann", "--team", "a b"]])
def test_cli_refuses_bad_token_requests(node: Node, args: list[str]) -> None:
    result = CliRunner().invoke(cli, ["token", "create", *args, "--data-dir", str(node.settings.data_dir)])

    assert result.exit_code != 0


def test_token_expiry_is_checked_even_after_it_was_accepted(api: Api) -> None:
    clock = [time.time()]
    api.client.app.state.tokens = tokens.TokenVerifier(api.node.name, lambda: api.node.keyring.token_keyset(),
                                                       api.client.app.state.tokens.gate, clock=lambda: clock[0])
    token = api.token("ann", lifetime=timedelta(seconds=60))
    headers = {"Authorization": f"Bearer {token}"}

    first = api.get("/items", headers=headers)
    clock[0] += 120
    later = api.get("/items", headers=headers)

    assert first.status_code == 200
    assert is_problem(later, 401)


def test_token_of_a_key_rotated_by_another_process_is_accepted(api: Api) -> None:
    rotated = Keyring.load(api.node.settings.keys_dir)
    rotated.rotate()
    token = api.token("ann")  # the node reads its keyring again: signed with the new key

    assert jwt.get_unverified_header(token)["kid"] == rotated.active.kid

    response = api.get("/items", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200


def test_merge_role_is_an_editor_not_an_admin(api: Api) -> None:
    merger = api.auth("mia", role="merge")

    assert api.get("/items", headers=merger).status_code == 200
    assert is_problem(api.get("/admin/keys", headers=merger), 403)


def test_admin_reads_keys_and_peers(api: Api) -> None:
    admin = api.auth("root", role="admin")

    keys = api.get("/admin/keys", headers=admin)
    peers = api.get("/admin/peers", headers=admin)

    assert keys.status_code == 200 and keys.json()["keys"][0]["kid"] == api.node.keyring.active.kid
    assert "d" not in keys.json()["keys"][0]  # public parts only
    assert peers.status_code == 200 and peers.json() == {"peers": []}


def test_editor_gets_403_on_admin_endpoints(api: Api) -> None:
    ann = api.auth("ann")

    assert is_problem(api.get("/admin/keys", headers=ann), 403)
    assert is_problem(api.get("/admin/peers", headers=ann), 403)


def test_a_kid_that_starts_with_a_dash_is_revoked_as_written(node: Node) -> None:
    keys = (Ed25519PrivateKey.generate() for _ in range(5000))  # one in 64 kids starts with "-"
    key = next(k for k in keys if public_jwk(k.public_key())["kid"].startswith("-"))
    kid = public_jwk(key.public_key())["kid"]
    pem = node.settings.data_dir / "dash.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    data_dir = ["--data-dir", str(node.settings.data_dir)]
    assert CliRunner().invoke(cli, ["keys", "import", str(pem), *data_dir]).exit_code == 0

    result = CliRunner().invoke(cli, ["keys", "revoke", kid, "--compromised-since", "2026-12-01T00:00:00Z", *data_dir])

    assert result.exit_code == 0, result.output
    statuses = {jwk["kid"]: jwk["status"] for jwk in Keyring.load(node.settings.keys_dir).jwks()["keys"]}
    assert statuses[kid] == "revoked"
