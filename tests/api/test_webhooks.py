"""Registering webhooks through the admin API and the CLI, and their delivery status while a receiver fails."""

from __future__ import annotations

import time

import pytest
from click.testing import Result
from typer.testing import CliRunner

from api.cli import app as cli
from api.cli_output import UserError
from infrastructure.node import Node
from infrastructure.webhook_delivery import WebhookSender, WebhookWorker
from tests.api.conftest import Api, is_problem
from tests.factory import SigningPeer
from tests.integration.test_webhooks import conflict
from tests.webhook_receiver import receiving


def fedsync(node: Node, *args: str) -> Result:
    store = ["--database-url", node.settings.database_url] if node.settings.database_url else []
    return CliRunner().invoke(cli, [*args, "--data-dir", str(node.settings.data_dir), *store])


def test_an_admin_adds_lists_and_removes_a_webhook_and_never_sees_its_secret_again(api: Api) -> None:
    admin = api.auth("root", role="admin")

    created = api.post("/admin/webhooks", json={"url": "https://hooks.example.org/fedsync"}, headers=admin)
    listed = api.get("/admin/webhooks", headers=admin)
    removed = api.delete(f"/admin/webhooks/{created.json()['id']}", headers=admin)
    again = api.delete(f"/admin/webhooks/{created.json()['id']}", headers=admin)

    assert created.status_code == 201, created.text
    body = created.json()
    assert body["events"] == ["conflict.opened", "item.edited", "item.shared"] and len(body["secret"]) >= 32
    assert (body["attempts"], body["delivered"], body["last_error"], body["next_attempt"]) == (0, 0, None, None)
    assert listed.json() == {"webhooks": [{k: v for k, v in body.items() if k != "secret"}]}
    assert body["secret"] not in listed.text
    assert removed.status_code == 204 and is_problem(again, 404)
    assert api.get("/admin/webhooks", headers=admin).json() == {"webhooks": []}


@pytest.mark.parametrize("request_body", [{"url": "ftp://example.org/x"}, {"url": "http://"}, {"url": "example.org"},
                                          {"url": "https://example.org", "events": ["item.deleted"]},
                                          {"url": "https://example.org", "secret": "mine"}])
def test_a_webhook_with_a_bad_url_or_unknown_kind_is_refused(api: Api, request_body: dict[str, object]) -> None:
    answer = api.post("/admin/webhooks", json=request_body, headers=api.auth("root", role="admin"))

    assert is_problem(answer, 422)
    assert api.node.webhooks.all() == []


def test_only_admins_see_or_add_webhooks(api: Api) -> None:
    editor = api.auth("ann")

    assert is_problem(api.get("/admin/webhooks", headers=editor), 403)
    assert is_problem(api.post("/admin/webhooks", json={"url": "https://example.org"}, headers=editor), 403)


def test_the_status_shows_failed_attempts_while_the_receiver_fails_and_the_delivery_after(
        api: Api, peer: SigningPeer) -> None:
    admin = api.auth("root", role="admin")
    with receiving([500, 500]) as receiver:
        created = api.post("/admin/webhooks", json={"url": receiver.url, "events": ["conflict.opened"]},
                           headers=admin).json()
        conflict(api.node, peer)
        worker = WebhookWorker(WebhookSender(api.node.webhooks, api.node.db, api.node.name, retry_base=0.05,
                                             retry_cap=0.2))

        worker.round()
        failing = api.get("/admin/webhooks", headers=admin).json()["webhooks"][0]
        for _ in range(100):  # bounded: a few rounds 50 ms apart are enough
            if receiver.accepted:
                break
            time.sleep(0.05)
            worker.round()
        delivered = api.get("/admin/webhooks", headers=admin).json()["webhooks"][0]

    assert failing["attempts"] == 1 and failing["last_error"].endswith("HTTP 500") and failing["next_attempt"]
    assert failing["delivered"] == 0 and failing["last_success"] is None
    assert [r.status for r in receiver.received] == [500, 500, 200]
    [accepted] = receiver.accepted
    assert accepted.signed_with(created["secret"])
    assert delivered["attempts"] == 0 and delivered["next_attempt"] is None
    assert delivered["delivered"] == len(accepted.notices) and delivered["last_success"]
    assert delivered["position"] > created["position"]


def test_the_cli_adds_lists_and_removes_webhooks(node: Node) -> None:
    added = fedsync(node, "webhook", "add", "https://hooks.example.org/x", "--events", "conflict.opened")
    webhook = node.webhooks.all()[0]
    listed = fedsync(node, "webhook", "list")
    as_json = fedsync(node, "webhook", "list", "--json")
    removed = fedsync(node, "webhook", "remove", webhook.id)

    assert added.exit_code == 0, added.output
    assert webhook.id in added.output and webhook.secret in added.output
    assert webhook.events == ("conflict.opened",)
    assert listed.exit_code == 0 and webhook.id in listed.output and webhook.secret not in listed.output
    assert webhook.secret not in as_json.output and '"delivered": 0' in as_json.output
    assert removed.exit_code == 0 and node.webhooks.all() == []


@pytest.mark.parametrize("args", [["add", "ftp://example.org"], ["add", "https://example.org", "--events", "nope"],
                                  ["remove", "0123abcd"]])
def test_the_cli_says_what_is_wrong_in_one_line(node: Node, args: list[str]) -> None:
    result = fedsync(node, "webhook", *args)

    assert result.exit_code != 0
    assert isinstance(result.exception, UserError) and "\n" not in str(result.exception)
    assert node.webhooks.all() == []
