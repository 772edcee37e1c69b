"""Dependencies of the routes, as ``Annotated`` aliases: the node, the library, the callers.

Editor routes take an editor (from an editor token), a merge editor or an
admin; federation routes take the calling node (from a node token), or none
for the anonymous reads. The editor ones are ``async`` although nothing in
them awaits: FastAPI runs a sync dependency in the thread pool, one thread
hop per dependency per request, while these only read app state (a token
check is a dictionary lookup and an in-memory revocation check once the
token was verified), so they run on the event loop. A token's first use
(signature, and its record in the store) runs in the thread pool. A node
token is checked against the store (its ``jti`` is single-use), so that
check runs in the thread pool, once: a request with a body was checked by
the body limit middleware before its body was read, and its caller is
taken from there on the event loop.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.conflict_desk import ConflictDesk
from api.library import Library
from api.limits import CALLER
from domain.errors import Forbidden, Unauthorized
from domain.visibility import Editor
from infrastructure.node import Node
from infrastructure.token_registry import TokenGate
from infrastructure.tokens import TokenVerifier

bearer = HTTPBearer(auto_error=False, description="an editor token from `fedsync token create`")
MERGE_ROLES = ("merge", "admin")


async def get_node(request: Request) -> Node:
    return request.app.state.node


async def get_library(request: Request) -> Library:
    return request.app.state.library


async def get_token_gate(request: Request) -> TokenGate:
    return request.app.state.tokens.gate


async def get_desk(library: Annotated[Library, Depends(get_library)]) -> ConflictDesk:
    return ConflictDesk(library)


async def current_editor(request: Request,
                         credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]) -> Editor:
    if credentials is None:
        raise Unauthorized("this endpoint needs an editor token: Authorization: Bearer <token> "
                           "(made with 'fedsync token create')")
    return await editor_of(request.app.state.tokens, credentials.credentials)


async def editor_of(verifier: TokenVerifier, token: str) -> Editor:
    """The editor a bearer token names: remembered on the event loop, else verified in the thread pool (its
    first use: a signature, and its record in the store)."""
    editor = verifier.remembered(token)
    if editor is None:
        editor = await run_in_threadpool(verifier.verify, token)
    return editor


async def current_merge_editor(editor: Annotated[Editor, Depends(current_editor)]) -> Editor:
    if editor.role not in MERGE_ROLES:
        raise Forbidden("resolving a conflict needs a merge editor's token (role merge) or an admin's; "
                        "editors may read the review")
    return editor


async def current_admin(editor: Annotated[Editor, Depends(current_editor)]) -> Editor:
    if not editor.is_admin:
        raise Forbidden("only an admin token may do this")
    return editor


async def calling_node(request: Request, node: Annotated[Node, Depends(get_node)],
                       authorization: Annotated[str | None, Header()] = None) -> str | None:
    """The calling node's name (None: anonymous). A request with a body was authenticated by the body
    limit already: no hop to the thread pool for it; else the token is checked there (a store write)."""
    caller = getattr(request.state, CALLER, None)
    if caller is not None:
        return caller
    return await run_in_threadpool(node.authenticator.authenticate, authorization)


async def calling_peer(caller: Annotated[str | None, Depends(calling_node)]) -> str:
    if caller is None:
        raise Unauthorized("this endpoint needs a node token (Authorization: Bearer ...)")
    return caller


NodeDep = Annotated[Node, Depends(get_node)]
LibraryDep = Annotated[Library, Depends(get_library)]
TokenGateDep = Annotated[TokenGate, Depends(get_token_gate)]
DeskDep = Annotated[ConflictDesk, Depends(get_desk)]
CurrentEditor = Annotated[Editor, Depends(current_editor)]
MergeEditor = Annotated[Editor, Depends(current_merge_editor)]
CallerDep = Annotated[str | None, Depends(calling_node)]
PeerDep = Annotated[str, Depends(calling_peer)]
