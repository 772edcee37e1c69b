"""The library's JSON transcoder, with an event's transaction encoded by orjson.

Every event the node stores has the state ``{"timestamp": datetime, "tx":
{...}}``, its transaction a plain JSON object (parsed from the wire or
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

STATE_KEYS = ("timestamp", "tx")  # an event's state, in the order the library's mapper gives it


class EventTranscoder(JSONTranscoder):
    def encode(self, obj: Any) -> bytes:
        if type(obj) is dict and tuple(obj) == STATE_KEYS and type(obj["timestamp"]) is datetime \
                and type(obj["tx"]) is dict:
            try:
                tx = orjson.dumps(obj["tx"])
            except TypeError:  # not plain JSON for orjson: the library's encoder says what it makes of it
                return super().encode(obj)
            return b'{"timestamp":' + orjson.dumps(self._encode_obj(obj["timestamp"])) + b',"tx":' + tx + b"}"
        return super().encode(obj)
