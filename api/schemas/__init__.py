"""Request and response models of the HTTP API, one module per area.

``common`` holds the shared field types (gids, scope, ...) and the problem
document; ``items``, ``tags``, ``shares``, ``conflicts`` and ``admin`` the
editor API's models; ``federation`` the protocol's. Requests are strict (no
type coercion) and refuse unknown fields. Responses are built from read-model
rows in ``api/responses.py``; aggregates and rows are never serialised
directly. A model that is the wire form of a domain concept of the same name
ends in ``Out`` (``ItemOut`` for the ``Item`` aggregate), so one name means
one thing.
"""
