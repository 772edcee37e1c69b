"""The federation protocol: what nodes ask of each other (docs/protocol.md).

Every endpoint but the well-known ones takes a node token (see
``infrastructure/node_auth.py``); outbox, gids and fetch also answer
anonymous callers, with PUBLIC items only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from api.deps import CallerDep, NodeDep, PeerDep
from api.errors import federation_responses
from api.schemas.federation import (
    FetchRequest,
    GidsPage,
    InboxRequest,
    InboxResponse,
    NodeInfo,
    OriginKeys,
    OutboxCursor,
    OutboxPage,
    Subscription,
    SubscriptionRequest,
    TransactionList,
)
from domain.errors import EntityNotFound
from domain.transaction import NodeName

router = APIRouter(tags=["federation"])
PROBLEMS = federation_responses()


def fast_json(data: Any, status: int = 200) -> Response:
    # Pages carry hundreds of transactions: orjson instead of FastAPI's encoder.
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


@router.get("/.well-known/jwks.json", tags=["keys"])
def read_jwks(node: NodeDep) -> dict[str, Any]:
    """The node's public keys (RFC 7517); retired keys stay, marked."""
    return node.keyring.jwks()


@router.get("/.well-known/fedsync", response_model=NodeInfo)
def read_node_info(node: NodeDep) -> NodeInfo:
    """Who this node is: name, base URL and where its keys are."""
    return NodeInfo(name=node.name, base_url=node.config.base_url,
                    jwks_uri=f"{node.config.base_url}/.well-known/jwks.json")


@router.get("/federation/outbox", response_model=OutboxPage, responses=PROBLEMS)
def read_outbox(node: NodeDep, caller: CallerDep, after: Annotated[OutboxCursor | None, Query()] = None) -> Response:
    """Transactions after a cursor that the caller may see, in outbox order, in a server-sized batch."""
    return fast_json(node.federation.outbox_page(caller, after))


@router.get("/federation/outbox/gids", response_model=GidsPage, responses=PROBLEMS)
def read_outbox_gids(node: NodeDep, caller: CallerDep,
                     after: Annotated[OutboxCursor | None, Query()] = None) -> Response:
    """Gids only, for gap filling."""
    return fast_json(node.federation.gids_page(caller, after))


@router.post("/federation/transactions:fetch", response_model=TransactionList, responses=PROBLEMS)
def fetch_transactions(node: NodeDep, caller: CallerDep, request: FetchRequest) -> Response:
    """The named transactions the caller may see (with their entities' histories on request)."""
    txs = node.federation.fetch(caller, request.gids, ancestors=request.ancestors, have=request.have)
    return fast_json({"transactions": txs})


@router.get("/federation/blobs/{sha256}", responses={200: {"content": {"application/octet-stream": {}}},
                                                    **PROBLEMS})
def read_blob(request: Request, node: NodeDep, caller: CallerDep,
              sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="the bytes' SHA-256 (hex)")]
              ) -> Response:
    """The bytes of an attachment the caller may see (as visible as its item), by their SHA-256: what a peer
    fetches after an attachment transaction reached it. Not found: not held here, or not for the caller."""
    blobs = request.app.state.blobs
    if not node.federation.outbox.may_have_blob(caller, sha256) or not blobs.has(sha256):
        raise EntityNotFound(f"no attachment bytes {sha256} here for {caller or 'an anonymous caller'}")
    chunks = blobs.open_chunks(sha256)

    def streamed() -> Iterator[bytes]:
        with chunks:  # closed however the download ends (a caller that goes away too)
            yield from chunks

    return StreamingResponse(streamed(), media_type="application/octet-stream",
                             headers={"X-Content-SHA256": sha256, "Cache-Control": "no-store"})


@router.post("/federation/subscriptions", response_model=Subscription, status_code=201, responses=PROBLEMS)
def create_subscription(node: NodeDep, peer: PeerDep, request: SubscriptionRequest | None = None) -> Subscription:
    """Ask this node to push its new outbox entries to the caller's inbox (only items with certain tags, when
    the request names them: pulls by the caller are filtered alike)."""
    tags = sorted({tag.lower() for tag in request.tags}) if request else []
    node.peers.subscribe(peer, tags=tags)
    node.wake_pusher()
    return Subscription(subscriber=peer, subscribed=True, tags=tags)


@router.delete("/federation/subscriptions", response_model=Subscription, responses=PROBLEMS)
def delete_subscription(node: NodeDep, peer: PeerDep) -> Subscription:
    """Stop pushing to the caller."""
    node.peers.subscribe(peer, False)
    return Subscription(subscriber=peer, subscribed=False)


@router.post("/federation/inbox", response_model=InboxResponse, responses=PROBLEMS)
def receive_inbox(node: NodeDep, peer: PeerDep, request: InboxRequest) -> Response:
    """A batch of signed transactions from a peer: per gid stored, duplicate, pending or refused."""
    return fast_json({"results": node.federation.inbox(peer, request.transactions)})


@router.get("/federation/keys", response_model=OriginKeys, responses=PROBLEMS)
def read_origin_keys(node: NodeDep, peer: PeerDep,
                     origin: Annotated[NodeName, Query(max_length=300, description="urn:domain:<host>")]) -> OriginKeys:
    """The keys this node verifies ``origin``'s transactions with (for relayed transactions)."""
    return OriginKeys(**node.federation.keys_for(origin))
