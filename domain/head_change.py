"""A change based on one head, whose transaction its caller may build before the group commit.

An edit of head P depends on P's state (its payload and scope) and on the
request alone: every aggregate object that holds P as a head holds the same
state for it, since a transaction never changes. So an editor's thread can
build and sign the edit (``LocalCommands.build_ahead``) from P's state as the
aggregate cache shows it then, before it queues the command; the group
commit's leader then only checks the edit against the current aggregate (P
still a head, with that state; the authority rules) and records it. If P is
no longer a head, or its state is not the one built from, or nothing was
built ahead, the leader builds the edit itself, as before.

Why: every edit waits for the one leader thread. Building there, mostly the
signature, kept it busy while 16 editors waited, and the signing library
lets go of the interpreter lock while it signs and takes it back behind
whichever thread holds it then, which can take the whole 5 ms switch
interval (a 46 us Ed25519 signature took 5.2 ms beside one busy thread):
40 % of the leader's samples with 16 editors on PostgreSQL (docs/scaling.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from domain.entity import Entity
from domain.errors import DomainError

E = TypeVar("E", bound=Entity)
T = TypeVar("T")
Head = dict[str, Any]  # a head's state, as ``Entity.head_states`` holds it


class HeadChange(Generic[E, T]):
    """A ``Change`` of head ``parent``: ``terms`` decides what the caller's checks allow (called once, first),
    ``check`` refuses the change on the entity, then ``make`` builds its transaction from the entity's gid, the
    parent's state and those terms alone."""

    def __init__(self, parent: str, terms: Callable[[], T], check: Callable[[E], None],
                 make: Callable[[str, Head, T], dict[str, Any]]) -> None:
        self.parent = parent
        self._terms = terms
        self._check = check
        self._make = make
        self._decided: list[T] = []
        self._ahead: tuple[Head, T, dict[str, Any]] | None = None  # built from this state, on these terms

    def build_ahead(self, entity_gid: str, head: Head, terms: T) -> None:
        """Build the transaction now, from ``head`` (the parent's state as seen outside the group commit) on
        ``terms`` (decided already, or the ones the checks decide for an ordinary edit): used if they hold."""
        try:
            self._ahead = (head, terms, self._make(entity_gid, head, terms))
        except DomainError:  # refused where it is checked, in the order it is checked there
            self._ahead = None

    def _decide(self) -> T:
        if not self._decided:
            self._decided.append(self._terms())
        return self._decided[0]

    def __call__(self, entity: E) -> dict[str, Any]:
        terms = self._decide()
        self._check(entity)
        head = entity.head_states[self.parent]
        if self._ahead is not None and (self._ahead[0] is head or self._ahead[0] == head) and self._ahead[1] == terms:
            return self._ahead[2]
        return self._make(entity.gid, head, terms)
