"""The federation protocol: what nodes ask of each other (docs/protocol.md).

Every endpoint but the well-known ones takes a node token (see
``infrastructure/node_auth.py``); outbox, gids and fetch also answer
anonymous callers, with PUBLIC items only.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from domain.errors import Unauthorized
from domain.transaction import NodeName
from infrastructure.federation import FETCH_MAX

router = APIRouter(tags=["federation"])
Gid = Annotated[str, Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]


def node_of(request: Request) -> Any:
    return request.app.state.node


def caller_of(request: Request, authorization: Annotated[str | None, Header()] = None) -> str | None:
    """The calling node (None: anonymous)."""
    return node_of(request).authenticator.authenticate(authorization)


def peer_of(caller: Annotated[str | None, Depends(caller_of)]) -> str:
    if caller is None:
        raise Unauthorized("this endpoint needs a node token (Authorization: Bearer ...)")
    return caller


Node = Annotated[Any, Depends(node_of)]
Caller = Annotated[str | None, Depends(caller_of)]
PeerName = Annotated[str, Depends(peer_of)]


class NodeInfo(BaseModel):
    name: str
    base_url: str
    jwks_uri: str
    protocol: str = "fedsync/1"


class OutboxPage(BaseModel):
    transactions: list[dict[str, Any]]
    more: bool
    last: str | None = Field(description="the last outbox gid examined: page after it next")


class GidsPage(BaseModel):
    gids: list[str]
    more: bool
    last: str | None


class FetchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gids: list[Gid] = Field(max_length=FETCH_MAX)
    ancestors: bool = False


class Transactions(BaseModel):
    transactions: list[dict[str, Any]]


class InboxRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    transactions: list[Any]


class InboxResult(BaseModel):
    gid: str
    status: str = Field(description="stored | duplicate | pending | refused")
    reason: str | None = None
    missing: list[str] | None = None


class InboxResponse(BaseModel):
    results: list[InboxResult]


class Subscription(BaseModel):
    subscriber: str
    subscribed: bool


class OriginKeys(BaseModel):
    name: str
    jwks: dict[str, Any]


def fast_json(data: Any, status: int = 200) -> Response:
    # Pages carry hundreds of transactions: orjson instead of FastAPI's encoder.
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


PROBLEMS = {400: {"description": "malformed JSON"},
            401: {"description": "missing or invalid node token"},
            403: {"description": "every transaction refused: a type the peering does not accept, a share "
                                 "only the item's creator may make"},
            404: {"description": "no such peer, or no keys known for that origin"},
            409: {"description": "every transaction refused: equivocation or a conflicting entity"},
            410: {"description": "unknown 'after' gid"},
            413: {"description": "batch too large"},
            422: {"description": "invalid request"},
            429: {"description": "busy: retry after the Retry-After header"}}


@router.get("/.well-known/jwks.json", tags=["keys"])
def read_jwks(node: Node) -> dict[str, Any]:
    """The node's public keys (RFC 7517); retired keys stay, marked."""
    return node.keyring.jwks()


@router.get("/.well-known/fedsync", response_model=NodeInfo)
def read_node_info(node: Node) -> NodeInfo:
    """Who this node is: name, base URL and where its keys are."""
    return NodeInfo(name=node.name, base_url=node.config.base_url,
                    jwks_uri=f"{node.config.base_url}/.well-known/jwks.json")


@router.get("/federation/outbox", response_model=OutboxPage, responses=PROBLEMS)
def read_outbox(node: Node, caller: Caller,
                after: Annotated[Gid | None, Query(description="page after this outbox gid")] = None) -> Response:
    """Transactions after a gid that the caller may see, in outbox order, in a server-sized batch."""
    return fast_json(node.federation.outbox_page(caller, after))


@router.get("/federation/outbox/gids", response_model=GidsPage, responses=PROBLEMS)
def read_outbox_gids(node: Node, caller: Caller, after: Annotated[Gid | None, Query()] = None) -> Response:
    """Gids only, for gap filling."""
    return fast_json(node.federation.gids_page(caller, after))


@router.post("/federation/transactions:fetch", response_model=Transactions, responses=PROBLEMS)
def fetch_transactions(node: Node, caller: Caller, request: FetchRequest) -> Response:
    """The named transactions the caller may see (with their entities' histories on request)."""
    txs = node.federation.fetch(caller, request.gids, ancestors=request.ancestors)
    return fast_json({"transactions": txs})


@router.post("/federation/subscriptions", response_model=Subscription, status_code=201, responses=PROBLEMS)
def create_subscription(node: Node, peer: PeerName) -> Subscription:
    """Ask this node to push its new outbox entries to the caller's inbox."""
    node.peers.subscribe(peer)
    node.wake_pusher()
    return Subscription(subscriber=peer, subscribed=True)


@router.delete("/federation/subscriptions", response_model=Subscription, responses=PROBLEMS)
def delete_subscription(node: Node, peer: PeerName) -> Subscription:
    """Stop pushing to the caller."""
    node.peers.subscribe(peer, False)
    return Subscription(subscriber=peer, subscribed=False)


@router.post("/federation/inbox", response_model=InboxResponse, responses=PROBLEMS)
def receive_inbox(node: Node, peer: PeerName, request: InboxRequest) -> Response:
    """A batch of signed transactions from a peer: per gid stored, duplicate, pending or refused."""
    return fast_json({"results": node.federation.inbox(peer, request.transactions)})


@router.get("/federation/keys", response_model=OriginKeys, responses=PROBLEMS)
def read_origin_keys(node: Node, peer: PeerName,
                     origin: Annotated[NodeName, Query(max_length=300, description="urn:domain:<host>")]) -> OriginKeys:
    """The keys this node verifies ``origin``'s transactions with (for relayed transactions)."""
    return OriginKeys(**node.federation.keys_for(origin))
