"""The signed transaction: wire model, canonical bytes and checksums.

Rules enforced here (before anything reaches an aggregate):
- the wire fields of the spec, nothing more (unknown fields are refused),
  with strict types: no coercion of numbers to strings or the like;
- gids are canonical lowercase UUID strings, so one UUID has one spelling
  and one canonical JSON;
- ``created_at`` is RFC 3339 in UTC (``...Z``), kept as the exact string
  that was signed; a received one is neither older than ``EARLIEST`` nor
  more than ``MAX_CLOCK_SKEW`` ahead of the receiver's clock;
- ``kind`` belongs to ``entity``; creations have no parents, merges two or
  more, everything else at least one; no duplicate or self parents;
- ``author`` is ``<name>@<origin>``: a node writes only as its own editors;
- a creation's ``entity_gid`` is ``owned_entity_gid(origin, gid)``, so no
  other node can create an entity under a gid its owner minted;
- ``payload`` has the entity's document shape and ``checksum`` is the sha256
  of its RFC 8785 canonical JSON; its strings hold no NUL character
  (unstorable as PostgreSQL text);
- the signature covers the canonical JSON of every other field.

A transaction is kept as the plain dict that was validated (``wire``), so it
is stored and relayed exactly as signed; canonical bytes are recomputed from
that dict, never from a re-serialised model.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

import orjson
import rfc8785
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from domain.errors import InvalidTransaction

EntityType = Literal["item", "tag", "share", "attachment"]
ENTITY_TYPES: tuple[str, ...] = get_args(EntityType)
Scope = Literal["OWNER", "TEAM", "DOMAIN", "NETWORK", "PUBLIC"]
SCOPES: tuple[str, ...] = get_args(Scope)  # narrowest first
KINDS: dict[str, tuple[str, ...]] = {
    "item": ("item.created", "item.edited", "item.deleted", "item.restored", "item.forked", "item.merged"),
    "tag": ("tag.created", "tag.renamed", "tag.deleted"),
    "share": ("share.granted", "share.requested", "share.changed", "share.revoked"),
    "attachment": ("attachment.added", "attachment.replaced", "attachment.deleted"),
}
CREATION_KINDS = frozenset({"item.created", "item.forked", "tag.created", "share.granted", "share.requested",
                            "attachment.added"})
# Entity gids are bound to their owner: a creation's entity_gid is owned_entity_gid(origin, gid).
ENTITY_NAMESPACE = uuid.UUID("1b0c5e3a-7f4d-5a2e-9c61-f3d8a0b47e95")

EARLIEST = "2000-01-01T00:00:00Z"  # no transaction is older: an earlier created_at is forged
MAX_CLOCK_SKEW = 300  # seconds a received created_at may be ahead of this node's clock
MAX_TITLE = 1_000
MAX_MARKDOWN = 1_000_000
MAX_LIST = 1_000
_NODE_RE = re.compile(r"^urn:domain:[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?(:[0-9]{1,5})?$")
_AUTHOR_RE = re.compile(r"^[A-Za-z0-9._~-]{1,64}@urn:domain:[a-z0-9.:-]{1,260}$")
_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
_JWS_RE = re.compile(r"^[A-Za-z0-9_-]{2,2048}\.\.[A-Za-z0-9_-]{2,2048}$")
_HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
_CANONICAL_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def narrowest_scope(scopes: Iterable[str]) -> str:
    """The narrowest of these scopes (an entity with several heads is as private as its most private one)."""
    return min(scopes, key=SCOPES.index)

def _gid(value: str) -> str:
    if _CANONICAL_UUID_RE.fullmatch(value):  # exactly the strings str(uuid.UUID(...)) gives: no parse needed
        return value
    try:
        uuid.UUID(value)
    except ValueError:
        raise ValueError(f"not a UUID: {value[:60]!r}") from None
    raise ValueError(f"UUID must be in canonical lowercase form: {value[:60]!r}")


def is_node_name(value: object) -> bool:
    """Is ``value`` a node name ``urn:domain:<host>`` (for answers that are not validated as a model)?"""
    return isinstance(value, str) and _NODE_RE.fullmatch(value) is not None


def _node(value: str) -> str:
    if not _NODE_RE.match(value):
        raise ValueError(f"not a node name 'urn:domain:<host>': {value[:80]!r}")
    return value


def _author(value: str) -> str:
    if not _AUTHOR_RE.match(value):
        raise ValueError(f"not an author 'name@urn:domain:<host>': {value[:80]!r}")
    return value


def _timestamp(value: str) -> str:
    if not _TIME_RE.match(value):
        raise ValueError(f"not an RFC 3339 UTC timestamp (YYYY-MM-DDTHH:MM:SS[.ffffff]Z): {value[:40]!r}")
    datetime.fromisoformat(value.replace("Z", "+00:00"))  # rejects 2026-13-45 and the like
    return value


def _pattern(regex: re.Pattern[str], what: str):
    def check(value: str) -> str:
        if not regex.match(value):
            raise ValueError(f"not a {what}")
        return value

    return check


Gid = Annotated[str, AfterValidator(_gid)]
NodeName = Annotated[str, AfterValidator(_node)]
Author = Annotated[str, AfterValidator(_author)]
Timestamp = Annotated[str, AfterValidator(_timestamp)]
GidList = Annotated[list[Gid], Field(max_length=MAX_LIST)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ItemState(_Strict):
    """The complete document state of an item after a transaction."""

    title: Annotated[str, Field(max_length=MAX_TITLE)]
    markdown: Annotated[str, Field(max_length=MAX_MARKDOWN)]
    tags: GidList
    forked_from: GidList
    deleted: bool
    # Only on an edit of an OWNER or TEAM item by a share holder: the share transaction it relies on.
    grant: Gid | None = None
    owner_edits_only: bool | None = None  # the owner restricted edits to itself (and edit share holders)


class TagState(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    deleted: bool


class ShareState(_Strict):
    item: Gid
    peer: NodeName
    permission: Literal["read", "edit"]
    revoked: bool
    team: Annotated[str, Field(pattern=r"^[A-Za-z0-9._~-]{1,64}$")] | None = None  # a team on that node
    grant: Gid | None = None  # share.requested: the requester's edit share transaction


_MEDIA_TYPE = r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$"  # type/subtype, lowercase


class AttachmentState(_Strict):
    """A file of an item: its metadata and the SHA-256 of its bytes, which travel apart (by hash)."""

    item: Gid
    name: Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^/\\\x00-\x1f]+$")]
    media_type: Annotated[str, Field(max_length=100, pattern=_MEDIA_TYPE)]
    size: Annotated[int, Field(ge=0, le=2**40)]
    sha256: Annotated[str, AfterValidator(_pattern(_HEX64_RE, "sha256 hex digest"))]
    deleted: bool


STATE_MODELS: dict[str, type[_Strict]] = {"item": ItemState, "tag": TagState, "share": ShareState,
                                          "attachment": AttachmentState}


class Transaction(_Strict):
    """The wire form of a transaction (every field signed but ``signature``)."""

    gid: Gid
    entity: EntityType
    entity_gid: Gid
    kind: str
    parents: Annotated[list[Gid], Field(max_length=64)]
    origin: NodeName
    author: Author
    created_at: Timestamp
    scope: Scope
    payload: dict[str, Any]
    checksum: Annotated[str, AfterValidator(_pattern(_HEX64_RE, "sha256 hex digest"))]
    signature: Annotated[str, AfterValidator(_pattern(_JWS_RE, "detached compact JWS"))]


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON.

    Transactions hold only strings, booleans, nulls, small integers, lists and
    objects with ASCII keys. For such values orjson with sorted keys writes
    exactly the RFC 8785 bytes (same escapes, same key order), about a hundred
    times faster than the pure-Python encoder; anything else (floats,
    non-ASCII keys, big integers) goes to the ``rfc8785`` package.
    tests/unit/test_transaction.py checks the two agree.
    """
    if _plain(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # e.g. a lone surrogate: let the reference encoder decide
    return rfc8785.dumps(value)


_MAX_SAFE_INT = 2**53 - 1


def _plain(value: Any) -> bool:
    if isinstance(value, str) or value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and k.isascii() and _plain(v) for k, v in value.items())
    return False


def checksum(state: dict[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON of a document state."""
    return hashlib.sha256(canonical(state)).hexdigest()


def signing_input(wire: dict[str, Any]) -> bytes:
    """The bytes a transaction's signature covers: every field but ``signature``."""
    return canonical({k: v for k, v in wire.items() if k != "signature"})


def content_key(wire: dict[str, Any]) -> bytes:
    """What makes two transactions with one gid 'the same' (signatures may differ)."""
    return signing_input(wire)


def owned_entity_gid(origin: str, creation_gid: str) -> str:
    """The gid of the entity that the creation ``creation_gid`` of node ``origin`` makes.

    A UUIDv5 over both, so nobody but ``origin`` can create an entity under
    that gid: another origin's creation under it fails this check on every
    node, whatever arrived first (docs/decisions/authority.md).
    """
    return str(uuid.uuid5(ENTITY_NAMESPACE, f"{origin} {creation_gid}"))


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def normal_timestamp(value: str) -> str:
    """A wire timestamp with six fraction digits, so that timestamps compare as text
    (``ValueError`` if it is not one)."""
    return datetime.fromisoformat(_timestamp(value).replace("Z", "+00:00")).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _describe(error: ValidationError) -> str:
    parts = []
    for e in error.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in e["loc"]) or "transaction"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


def validate(data: Any) -> dict[str, Any]:
    """Check a wire transaction; return it as a plain dict, or raise InvalidTransaction."""
    try:
        tx = Transaction.model_validate(data)
        state = STATE_MODELS[tx.entity].model_validate(tx.payload)
    except ValidationError as e:
        raise InvalidTransaction(f"invalid transaction: {_describe(e)}") from None
    _check_payload_text(tx.payload)
    _check_invariants(tx, state)
    return tx.model_dump()


def check_created_at(tx: dict[str, Any], now: str) -> None:
    """A received transaction's time is plausible: not before ``EARLIEST``, not after ``now``
    plus the clock skew tolerated between nodes. A far-future time would make its head the
    current state everywhere for good (latest ``created_at`` wins)."""
    created = _instant(tx["created_at"])
    if created < _instant(EARLIEST):
        raise InvalidTransaction(f"created_at {tx['created_at']} is before {EARLIEST}: not a fedsync transaction")
    if (created - _instant(now)).total_seconds() > MAX_CLOCK_SKEW:
        raise InvalidTransaction(f"created_at {tx['created_at']} is more than {MAX_CLOCK_SKEW} s ahead of "
                                 f"this node's clock ({now})")


def _instant(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def _check_payload_text(payload: Any) -> None:
    """``_check_text`` of a payload, its JSON looked at first (orjson writes NUL as ``\\u0000``): without
    that, no string holds one; with it (or a payload orjson does not write), the walk decides and names where."""
    if not _no_nul_escape(payload):
        _check_text(payload, "payload")


def _check_text(value: Any, where: str) -> None:
    """No NUL character in any string: PostgreSQL's text cannot hold one, and a stored event
    that a read model cannot write would wedge the read models behind it."""
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidTransaction(f"invalid transaction: {where} contains a NUL character")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_text(item, f"{where}[{i}]")


def _no_nul_escape(value: Any) -> bool:
    try:
        return b"\\u0000" not in orjson.dumps(value)
    except orjson.JSONEncodeError:
        return False


def _check_invariants(tx: Transaction, state: _Strict) -> None:
    if tx.kind not in KINDS[tx.entity]:
        raise InvalidTransaction(f"kind {tx.kind!r} is not a kind of entity {tx.entity!r}")
    if not tx.author.endswith("@" + tx.origin):
        raise InvalidTransaction(f"author {tx.author!r} is not an editor of the origin {tx.origin}: "
                                 "an author is '<name>@<origin>'")
    if tx.kind in CREATION_KINDS and tx.entity_gid != owned_entity_gid(tx.origin, tx.gid):
        raise InvalidTransaction(f"{tx.kind} {tx.gid} from {tx.origin} cannot create entity {tx.entity_gid}: "
                                 "a creation's entity_gid is owned_entity_gid(origin, gid) (docs/protocol.md)")
    if len(set(tx.parents)) != len(tx.parents):
        raise InvalidTransaction("parents must not repeat")
    if tx.gid in tx.parents:
        raise InvalidTransaction("a transaction cannot be its own parent")
    if tx.kind in CREATION_KINDS and tx.parents:
        raise InvalidTransaction(f"{tx.kind} creates an entity and has no parents")
    if tx.kind not in CREATION_KINDS and not tx.parents:
        raise InvalidTransaction(f"{tx.kind} needs the parent transaction(s) it is based on")
    if tx.kind == "item.merged" and len(tx.parents) < 2:
        raise InvalidTransaction("item.merged needs two or more parents")
    deletion = tx.kind in ("item.deleted", "attachment.deleted")
    if tx.kind in ("item.deleted", "item.restored", *KINDS["attachment"]) and tx.payload["deleted"] != deletion:
        raise InvalidTransaction(f"{tx.kind} must carry deleted: {str(deletion).lower()}")
    if tx.kind == "item.forked" and not tx.payload["forked_from"]:
        raise InvalidTransaction("item.forked needs at least one item in forked_from")
    if tx.entity == "share" and tx.kind == "share.revoked" and not tx.payload["revoked"]:
        raise InvalidTransaction("share.revoked must carry revoked: true")
    if tx.kind == "share.requested" and (tx.payload.get("grant") is None or tx.payload["revoked"]):
        raise InvalidTransaction("share.requested names the requester's edit share (grant) and is not revoked")
    if checksum(state.model_dump(exclude_unset=True)) != tx.checksum:
        raise InvalidTransaction("checksum does not match the canonical payload")
