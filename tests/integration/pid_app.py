"""A bare ASGI app that answers every request with its process id (tests of the serving processes)."""

import os
from pathlib import Path

# A test that needs a new process to fail at its start names a file here, and creates it when the time comes.
if (broken := os.environ.get("FEDSYNC_TEST_BREAK_PID_APP")) and Path(broken).exists():
    raise RuntimeError(f"{broken} exists: this app does not start")


async def app(scope, receive, send):  # noqa: ANN001, ANN201 - the ASGI signature
    if scope["type"] != "http":
        return
    body = str(os.getpid()).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
