"""The product's one error hierarchy.

Every refusal the domain or its ports can make is a ``DomainError``. Each
class carries the HTTP status it maps to (``status``) and a stable problem
``type`` slug; ``api/errors.py`` turns them into RFC 9457 problem details in
one place. Extra, machine-readable facts (the current heads of a stale edit,
say) travel in ``extra``.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base class: a request the node refuses, with a clear reason."""

    status: int = 400
    type: str = "bad-request"
    title: str = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidTransaction(DomainError):
    """A transaction that breaks the wire format or its own invariants."""

    status = 422
    type = "invalid-transaction"
    title = "Invalid transaction"


class InvalidSignature(DomainError):
    """A JWS that is malformed, tampered, or signed by the wrong key."""

    status = 422
    type = "invalid-signature"
    title = "Invalid signature"


class RevokedKey(InvalidSignature):
    """A transaction created at or after the time from which its origin revoked the signing key."""

    type = "revoked-key"
    title = "Revoked signing key"


class UnknownKey(InvalidSignature):
    """A JWS whose ``kid`` is not in the key set it is checked against."""

    type = "unknown-key"
    title = "Unknown signing key"


class NotFound(DomainError):
    status = 404
    type = "not-found"
    title = "Not found"


class EntityNotFound(NotFound):
    """No item, tag or share with that gid (or not visible to the caller)."""

    type = "entity-not-found"
    title = "Entity not found"


class TransactionNotFound(NotFound):
    """No stored transaction with that gid."""

    type = "transaction-not-found"
    title = "Transaction not found"


class TokenNotFound(NotFound):
    """No editor token with that jti was issued by this node."""

    type = "token-not-found"
    title = "Token not found"


class StaleHead(DomainError):
    """A local change based on a transaction that is no longer a head."""

    status = 409
    type = "stale-head"
    title = "Stale head"

    def __init__(self, detail: str, heads: list[str]) -> None:
        super().__init__(detail, heads=heads)
        self.heads = heads


class Equivocation(DomainError):
    """A gid already stored with different content."""

    status = 409
    type = "equivocation"
    title = "Equivocation"


class UnknownParents(DomainError):
    """A transaction whose parents are not (all) stored here."""

    status = 409
    type = "unknown-parents"
    title = "Unknown parent transactions"

    def __init__(self, detail: str, missing: list[str]) -> None:
        super().__init__(detail, missing=missing)
        self.missing = missing


class UnknownNode(DomainError):
    """A node name this node does not know (not itself, not a peer, no keys of it): a typo, most likely."""

    status = 422
    type = "unknown-node"
    title = "Unknown node"


class EntityConflict(DomainError):
    """A transaction that cannot apply to the entity as stored.

    For example a second creation of an existing entity, or a change to an
    entity of another type under the same gid.
    """

    status = 409
    type = "entity-conflict"
    title = "Entity conflict"


class BatchRefused(DomainError):
    """Every transaction of a received batch was refused (``results`` says why, per gid).

    Its status is the refusals' own when they agree (409 for equivocations,
    say), else 422.
    """

    type = "batch-refused"
    title = "Every transaction was refused"

    def __init__(self, detail: str, status: int, results: list[dict[str, Any]]) -> None:
        super().__init__(detail, results=results)
        self.status = status


class Forbidden(DomainError):
    status = 403
    type = "forbidden"
    title = "Forbidden"


class Unauthorized(DomainError):
    status = 401
    type = "unauthorized"
    title = "Unauthorized"


class UnknownTokenKey(Unauthorized):
    """A node token signed with a key the callee has not pinned for the caller (yet: it reads the
    caller's keys in the background, so the caller may try again in a moment)."""

    type = "unknown-token-key"


class Gone(DomainError):
    """A cursor (an 'after' gid) this node does not know: page from a gid-diff instead."""

    status = 410
    type = "unknown-cursor"
    title = "Unknown cursor"


class TooLarge(DomainError):
    status = 413
    type = "too-large"
    title = "Request too large"


class Overloaded(DomainError):
    """The node is busy; the caller should retry after ``retry_after`` seconds."""

    status = 429
    type = "overloaded"
    title = "Too many requests"

    def __init__(self, detail: str, retry_after: int = 1) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.retry_after = retry_after


class PeerUnreachable(DomainError):
    """A peer did not answer, or answered with an error."""

    status = 502
    type = "peer-unreachable"
    title = "Peer unreachable"


class BadPeerAnswer(DomainError):
    """A URL (a peer, or a node about to become one) answered, but not what the protocol says:
    a bad gateway for the admin who asked. The detail never quotes the answer."""

    status = 502
    type = "bad-peer-answer"
    title = "Bad answer from peer"
