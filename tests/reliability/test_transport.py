"""The in-process transport the reliability tests run federation over must take what the real HTTP client
takes: a parameter added to one and not the other fails here, not as a TypeError deep in a property test."""

from __future__ import annotations

import inspect

from infrastructure.federation_client import FederationClient
from tests.reliability.transport import InProcessClient


def test_the_in_process_client_has_the_real_clients_calls_with_the_same_parameters() -> None:
    real = {name: inspect.signature(member) for name, member in inspect.getmembers(FederationClient, inspect.isfunction)
            if not name.startswith("_")}
    ours = {name: inspect.signature(member) for name, member in inspect.getmembers(InProcessClient, inspect.isfunction)
            if not name.startswith("_")}

    used = {"node_info", "jwks", "keys_of", "outbox", "gids", "fetch", "subscribe", "deliver"}  # what nodes call
    assert used <= ours.keys()
    for name in used:
        assert list(ours[name].parameters) == list(real[name].parameters), name
        for parameter in real[name].parameters.values():
            mine = ours[name].parameters[parameter.name]
            assert (mine.kind, mine.default) == (parameter.kind, parameter.default), (name, parameter.name)
