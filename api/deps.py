"""Dependencies of the routes, as ``Annotated`` aliases: the node, the library, the editor.

They are ``async`` although nothing in them awaits: FastAPI runs a sync
dependency in the thread pool, one thread hop per dependency per request,
while these only read app state (a token check is a dictionary lookup once
the token was verified), so they run on the event loop.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.library import Library
from domain.errors import Forbidden, Unauthorized
from domain.visibility import Editor

bearer = HTTPBearer(auto_error=False, description="an editor token from `fedsync token create`")


async def get_node(request: Request) -> Any:
    return request.app.state.node


async def get_library(request: Request) -> Library:
    return request.app.state.library


async def current_editor(request: Request,
                         credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]) -> Editor:
    if credentials is None:
        raise Unauthorized("this endpoint needs an editor token: Authorization: Bearer <token> "
                           "(made with 'fedsync token create')")
    return request.app.state.tokens.verify(credentials.credentials)


async def current_admin(editor: Annotated[Editor, Depends(current_editor)]) -> Editor:
    if not editor.is_admin:
        raise Forbidden("only an admin token may do this")
    return editor


NodeDep = Annotated[Any, Depends(get_node)]
LibraryDep = Annotated[Library, Depends(get_library)]
CurrentEditor = Annotated[Editor, Depends(current_editor)]
AdminEditor = Annotated[Editor, Depends(current_admin)]
