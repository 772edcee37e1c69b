"""Field types every area shares, the strict request base and the problem document.

Editors may spell a gid in any UUID form (upper case, braces, ``urn:uuid:``);
it is handled in canonical lowercase form from then on. The federation
protocol is byte-exact, so its requests take canonical gids only (``WireGid``).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from domain.transaction import MAX_LIST, MAX_MARKDOWN, MAX_TITLE


def canonical_gid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError(f"not a UUID: {value[:60]!r}") from None


Gid = Annotated[
    str,
    Field(min_length=32, max_length=45, json_schema_extra={"format": "uuid"}),
    AfterValidator(canonical_gid),
]
WireGid = Annotated[str, Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
Title = Annotated[str, Field(max_length=MAX_TITLE)]
Markdown = Annotated[str, Field(max_length=MAX_MARKDOWN)]
TagGids = Annotated[list[Gid], Field(max_length=MAX_LIST, description="tag gids (unknown tags are kept)")]


class StrictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Problem(BaseModel):
    """An RFC 9457 problem document (media type application/problem+json)."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
