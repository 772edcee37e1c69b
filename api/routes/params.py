"""Parameters (path, query, headers) and the response helper shared by the editor routes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Header, Path, Query, Response
from pydantic import AfterValidator, BaseModel

from api.conditional import entity_tag, head_named_by
from api.errors import PreconditionRequired
from api.schemas.common import canonical_gid
from domain.errors import DomainError

GidPath = Annotated[str, Path(min_length=32, max_length=45, description="an item gid (UUID)"),
                    AfterValidator(canonical_gid)]
TxGidPath = Annotated[str, Path(min_length=32, max_length=45, description="a transaction gid (UUID)"),
                      AfterValidator(canonical_gid)]
TagGidPath = Annotated[str, Path(min_length=32, max_length=45, description="a tag gid (UUID)"),
                       AfterValidator(canonical_gid)]
ShareGidPath = Annotated[str, Path(min_length=32, max_length=45, description="a share gid (UUID)"),
                         AfterValidator(canonical_gid)]
AttachmentGidPath = Annotated[str, Path(min_length=32, max_length=45, description="an attachment gid (UUID)"),
                              AfterValidator(canonical_gid)]
IncludeDeleted = Annotated[bool, Query(description="also find a deleted (tombstoned) item")]
IfMatch = Annotated[str | None, Header(description='the head the change is based on: "<head gid>" (the ETag)',
                                       max_length=200)]


class InvalidPrecondition(DomainError):
    status = 400
    type = "invalid-precondition"
    title = "Invalid precondition"


def named_head(if_match: str | None, parent: str | None, *, required: bool = True) -> str | None:
    """The head a change is based on, from If-Match or a ``parent`` field (they must agree)."""
    named = None
    if if_match is not None:
        try:
            named = str(uuid.UUID(head_named_by(if_match)))
        except ValueError:
            raise InvalidPrecondition("If-Match must be one entity tag, the item's ETag or \"<head gid>\": "
                                      f"{if_match[:80]!r}") from None
    if named is not None and parent is not None and named != parent:
        raise InvalidPrecondition(f"If-Match names head {named} but parent names {parent}")
    head = named or parent
    if head is None and required:
        raise PreconditionRequired("name the head this change is based on: If-Match: \"<head gid>\" "
                                   "(the item's ETag) or a 'parent' field")
    return head


def json_response(model: BaseModel, status_code: int = 200, headers: dict[str, str] | None = None, *,
                  head: str | None = None) -> Response:
    """The model as JSON, serialised by pydantic (the route still declares it as response_model); with
    ``head``, tagged ``"<head>.<digest>"`` (``api/conditional.py``).

    Returning a Response skips FastAPI's second validation of the answer, which
    for a sync endpoint costs another hop through the thread pool; the model
    was validated when it was built.
    """
    body = model.model_dump_json().encode()
    if head is not None:
        headers = {**(headers or {}), "ETag": entity_tag(body, head)}
    return Response(body, status_code=status_code, media_type="application/json", headers=headers)
