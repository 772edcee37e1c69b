"""The orjson event transcoder writes exactly the library's JSON, and the node stores events with it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder

from infrastructure.persistence import TRANSCODER, store_env
from infrastructure.persistence.transcoder import EventTranscoder

NOW = datetime(2026, 12, 6, 5, 20, 24, 382294, tzinfo=UTC)


def transcoders() -> tuple[JSONTranscoder, JSONTranscoder]:
    """Ours and the library's, each with the transcodings an application registers."""
    ours, library = Application(env=TRANSCODER), Application()
    assert type(ours.mapper.transcoder) is EventTranscoder and type(library.mapper.transcoder) is JSONTranscoder
    return ours.mapper.transcoder, library.mapper.transcoder


@pytest.mark.parametrize("tx", [
    {"gid": "b9975ddc", "payload": {"markdown": "é\n\u2028\x7f\x00\x1f\"\\/\ud7ff\U0001f600", "tags": []},
     "parents": ["a", "b"], "n": 1, "big": 2**63 - 1, "neg": -5, "flag": True, "none": None, "f": 1.5},
    {"payload": {"nested": {"_type_": "uuid_hex", "_data_": "0" * 32}}},  # a lookalike stays a plain object
    {"too_big_for_orjson": 2**70},  # orjson refuses: the library's encoder writes it
    {1: "a key that is not a string"},  # orjson refuses: the library's encoder turns it into "1"
])
@pytest.mark.parametrize("topic", [None, "domain.item:Item"])  # an edit's event; an entity's creation
def test_an_events_state_is_the_same_bytes_as_the_librarys_and_decodes_the_same(tx: dict[Any, Any],
                                                                                 topic: str | None) -> None:
    ours, library = transcoders()
    state = {"timestamp": NOW, "tx": tx} if topic is None else {"timestamp": NOW, "originator_topic": topic, "tx": tx}
    encoded = ours.encode(state)
    assert encoded == library.encode(state)
    assert ours.decode(encoded) == library.decode(encoded)
    assert ours.decode(encoded)["timestamp"] == NOW


@pytest.mark.parametrize("topic", [None, "domain.item:Item"])
def test_an_events_state_is_not_left_to_the_librarys_pure_python_encoder(topic: str | None,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    ours, library = transcoders()
    state = {"timestamp": NOW, "tx": {"gid": "g"}}
    if topic is not None:
        state = {"timestamp": NOW, "originator_topic": topic, "tx": {"gid": "g"}}
    expected = library.encode(state)
    monkeypatch.setattr(ours, "encoder", None)  # the library's json.JSONEncoder: not used
    assert ours.encode(state) == expected


@pytest.mark.parametrize("state", [
    {"tx": {"a": 1}, "timestamp": NOW},  # another key order
    {"timestamp": NOW, "tx": {"a": 1}, "other": 2},  # another shape (a snapshot's state, say)
    {"timestamp": NOW, "originator_topic": 5, "tx": {"a": 1}},  # a creation's shape, a topic that is not a string
    {"timestamp": NOW, "tx": {"a": 1}, "originator_topic": "m:C"},  # another key order
    {"timestamp": NOW.isoformat(), "tx": {"a": 1}},
    [1, 2, NOW],
])
def test_any_other_state_is_left_to_the_library(state: Any) -> None:
    ours, library = transcoders()
    assert ours.encode(state) == library.encode(state)


def test_both_stores_name_it() -> None:
    assert store_env(None, "/tmp/x.db")["TRANSCODER_TOPIC"] == TRANSCODER["TRANSCODER_TOPIC"]
    assert store_env("postgresql://u@h/db", "")["TRANSCODER_TOPIC"] == TRANSCODER["TRANSCODER_TOPIC"]
