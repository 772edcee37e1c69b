"""The library's JSON transcoder, with an event's transaction encoded by orjson.

Every event the node stores has the state ``{"timestamp": datetime, "tx":
{...}}`` (an entity's first also ``"originator_topic"``, its class, between
the two), its transaction a plain JSON object (parsed from the wire or
built from strings and integers, and canonicalised for its checksum before it
is recorded). The library's ``JSONTranscoder`` walks it with the standard
library's pure-Python encoder (its ``default`` hook forces that): ~10 % of the
receiving thread in a catch-up (``bench/catchup.py``, ``py-spy``). This one
writes the same JSON for that shape (the timestamp through the library's own
transcoding, the transaction by orjson) and hands anything else, and any
transaction orjson refuses (an integer beyond 64 bits, say), to the library
unchanged. Decoding is the library's: the bytes are the same JSON either way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from eventsourcing.persistence import JSONTranscoder

# An event's state, in the order the library's mapper gives it: an entity's creation also names its class.
STATE_KEYS = ("timestamp", "tx")
CREATED_KEYS = ("timestamp", "originator_topic", "tx")


class EventTranscoder(JSONTranscoder):
    def encode(self, obj: Any) -> bytes:
        if type(obj) is dict and type(obj.get("timestamp")) is datetime and type(obj.get("tx")) is dict:
            keys = tuple(obj)
            if keys == STATE_KEYS or (keys == CREATED_KEYS and type(obj["originator_topic"]) is str):
                try:
                    tx = orjson.dumps(obj["tx"])
                    topic = b',"originator_topic":' + orjson.dumps(obj["originator_topic"]) if len(keys) == 3 else b""
                except TypeError:  # not plain JSON for orjson: the library's encoder says what it makes of it
                    return super().encode(obj)
                return (b'{"timestamp":' + orjson.dumps(self._encode_obj(obj["timestamp"])) + topic
                        + b',"tx":' + tx + b"}")
        return super().encode(obj)
