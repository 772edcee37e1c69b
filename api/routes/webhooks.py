"""Admin: outgoing webhooks and their delivery status (the API twin of ``fedsync webhook ...``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from api.deps import NodeDep, current_admin
from api.errors import responses
from api.schemas.admin import WebhookAdd, WebhookCreated, WebhookList, WebhookStatus

router = APIRouter(prefix="/admin/webhooks", tags=["admin"], dependencies=[Depends(current_admin)],
                   responses=responses(401, 403))
WebhookIdPath = Annotated[str, Path(pattern=r"^[a-f0-9]{1,64}$", description="a webhook's id")]


@router.get("", response_model=WebhookList)
def list_webhooks(node: NodeDep) -> WebhookList:
    """Each webhook: its URL and notice kinds, position, last success and error, failed attempts, next attempt."""
    return WebhookList(webhooks=[WebhookStatus(**webhook.status()) for webhook in node.webhooks.all()])


@router.post("", response_model=WebhookCreated, status_code=201, responses=responses(422))
def add_webhook(node: NodeDep, request: WebhookAdd) -> WebhookCreated:
    """Register a webhook, told what happens from now on; the answer holds its secret, shown this once only."""
    webhook = node.webhooks.add(request.url, request.events)
    return WebhookCreated(**webhook.status(), secret=webhook.secret)


@router.delete("/{webhook_id}", status_code=204, responses=responses(404, 422))
def remove_webhook(node: NodeDep, webhook_id: WebhookIdPath) -> Response:
    """Stop sending to a webhook and forget it."""
    node.webhooks.remove(webhook_id)
    return Response(status_code=204)
