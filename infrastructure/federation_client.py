"""The HTTP side of federation: what a node asks of its peers (httpx).

Each request carries a fresh node token for the peer it goes to. Answers
become plain data or one of this module's errors; no retry happens here
(the delivery and pull loops decide when to try again). Every answer is read
as it comes and cut off past a bound (``max_answer_bytes``, attachments
their own): a URL that answers without end costs us that much memory, not
all of it.

An outbox page's ``last`` is the peer's cursor: opaque text that is stored
and given back as is (a sealed cursor from this version, a plain gid from
older nodes). Only its form is checked, so that a hostile peer cannot make
us store or send back anything else.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import orjson

KEYS_TIMEOUT = 5.0  # seconds: key reads are triggered by what others send, so they stay short
UNKNOWN_KEY_RETRY = 1.0  # seconds before asking again a peer that did not know our (new) key yet
CURSOR = re.compile(r"[A-Za-z0-9._~-]{1,256}")  # URL-safe as it is; a gid or a sealed cursor
# The most of one answer read from a URL: as much as a peer's request body may be here (the default of
# Settings.federation_max_body_bytes). A page or a fetch answers at most 8 MiB of transactions and one more.
MAX_ANSWER_BYTES = 32 * 1024 * 1024
AS_IS = {"Accept-Encoding": "identity"}  # answers in no content coding: their bytes are what is counted


class PeerError(Exception):
    """A peer answered with an error, or could not be reached."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None,
                 answer: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.answer = answer  # the problem document, when the peer sent one


class CursorGone(PeerError):
    """The peer does not know the gid we asked to page after (410)."""


class BadAnswer(PeerError):
    """The URL answered, but not what the protocol says (not JSON, not the document asked for).

    Its message never quotes the answer: whatever a URL answers is not ours to echo.
    """


class FederationClient:
    def __init__(self, token_for: Callable[[str], str], *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None, max_answer_bytes: int = MAX_ANSWER_BYTES) -> None:
        self.token_for = token_for  # peer name -> node token
        self.timeout = timeout
        self.max_answer_bytes = max_answer_bytes
        self.transport = transport  # the network by default
        self._http: httpx.Client | None = None
        self._making = threading.Lock()

    @property
    def http(self) -> httpx.Client:
        """Made at first use (by one thread): its TLS context costs ~30 ms, which a CLI command that never
        calls a peer need not pay."""
        if self._http is None:
            with self._making:
                if self._http is None:
                    # Answers as they are: fedsync never compresses them, and a compressed answer could
                    # expand ~1,000 times in one read before its bound is checked (``read_at_most``).
                    self._http = httpx.Client(timeout=self.timeout, transport=self.transport,
                                              headers={"User-Agent": "fedsync", **AS_IS})
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def _request(self, method: str, url: str, peer: str | None, *, quote: bool = True, **kwargs: Any) -> Any:
        """The JSON answer; ``quote``: an error may quote the ``detail`` of the peer's problem document
        (never for a URL that is not a peer yet). A peer that does not know our signing key yet (we
        rotated it) reads our keys in the background when it says so: asked once more a moment later."""
        if "body" in kwargs:
            kwargs["content"] = orjson.dumps(kwargs.pop("body"))
        for attempt in range(2):
            headers = {"Authorization": f"Bearer {self.token_for(peer)}"} if peer else {}  # a fresh jti each time
            if "content" in kwargs:
                headers["Content-Type"] = "application/json"
            try:
                with self.http.stream(method, url, headers=headers, **kwargs) as response:
                    content = read_at_most(response, self.max_answer_bytes, f"{method} {url}")
            except httpx.HTTPError as e:
                raise PeerError(f"{method} {url}: {type(e).__name__}: {e}") from None
            rotated = response.status_code == 401 and b"problem:unknown-token-key" in content
            if attempt == 0 and peer and rotated:
                time.sleep(UNKNOWN_KEY_RETRY)
                continue
            break
        if response.status_code >= 400:
            raise _error(method, url, response, content, quote)
        try:
            return orjson.loads(content) if content else None
        except orjson.JSONDecodeError:
            raise BadAnswer(f"{method} {url}: the answer ({response.status_code}, {len(content)} bytes) "
                            "is not JSON", response.status_code) from None

    # --- discovery -------------------------------------------------------
    def node_info(self, base_url: str) -> Any:
        return self._request("GET", f"{base_url}/.well-known/fedsync", None, quote=False)

    def jwks(self, base_url: str) -> Any:
        return self._request("GET", f"{base_url}/.well-known/jwks.json", None, quote=False, timeout=KEYS_TIMEOUT)

    def keys_of(self, peer: str, base_url: str, origin: str) -> dict[str, Any]:
        """The keys a peer has pinned for another node (that it relays)."""
        return self._request("GET", f"{base_url}/federation/keys", peer, params={"origin": origin},
                             timeout=KEYS_TIMEOUT)

    # --- pull --------------------------------------------------------------
    def outbox(self, peer: str, base_url: str, after: str | None) -> dict[str, Any]:
        return self._page(f"{base_url}/federation/outbox", peer, after)

    def gids(self, peer: str, base_url: str, after: str | None) -> dict[str, Any]:
        return self._page(f"{base_url}/federation/outbox/gids", peer, after)

    def _page(self, url: str, peer: str, after: str | None) -> dict[str, Any]:
        page = self._request("GET", url, peer, params={"after": after} if after else {})
        last = page.get("last") if isinstance(page, dict) else None
        if not isinstance(page, dict) or (last is not None and not (isinstance(last, str) and CURSOR.fullmatch(last))):
            raise PeerError(f"GET {url}: the answer is not a page with a cursor a node gives: {str(page)[:100]!r}")
        return page

    def fetch(self, peer: str, base_url: str, gids: Sequence[str], *, ancestors: bool = False,
              have: Sequence[str] = ()) -> list[dict[str, Any]]:
        body = {"gids": list(gids), "ancestors": ancestors, **({"have": list(have)} if have else {})}
        return self._request("POST", f"{base_url}/federation/transactions:fetch", peer, body=body)["transactions"]

    def blob(self, peer: str, base_url: str, sha256: str, max_bytes: int) -> bytes:
        """An attachment's bytes from a peer, at most ``max_bytes`` (read as they come: a peer that sends more
        is cut off, never buffered whole). The caller verifies the hash."""
        url = f"{base_url}/federation/blobs/{sha256}"
        headers = {"Authorization": f"Bearer {self.token_for(peer)}"}
        try:
            with self.http.stream("GET", url, headers=headers) as response:
                if response.status_code >= 400:
                    raise _error("GET", url, response, read_at_most(response, self.max_answer_bytes, f"GET {url}"),
                                 True)
                return read_at_most(response, max_bytes, f"GET {url}", "an attachment may have")
        except httpx.HTTPError as e:
            raise PeerError(f"GET {url}: {type(e).__name__}: {e}") from None

    # --- push --------------------------------------------------------------
    def subscribe(self, peer: str, base_url: str, tags: Sequence[str] = ()) -> dict[str, Any]:
        return self._request("POST", f"{base_url}/federation/subscriptions", peer, body={"tags": list(tags)})

    def deliver(self, peer: str, base_url: str, transactions: Sequence[dict[str, Any]]) -> dict[str, Any]:
        try:
            return self._request("POST", f"{base_url}/federation/inbox", peer,
                                 body={"transactions": list(transactions)})
        except PeerError as e:
            return answered(e)


def answered(error: PeerError) -> dict[str, Any]:
    """An inbox that refused a whole batch still answered it (per gid, in ``results``): the
    pusher moves on. Any other failure is raised again, to be retried."""
    if error.answer is not None and isinstance(error.answer.get("results"), list):
        return {"results": error.answer["results"]}
    raise error


def read_at_most(response: httpx.Response, limit: int, request: str,
                  bound: str = "this node reads from a peer") -> bytes:
    """The answer's body, or BadAnswer as soon as it is longer than ``limit`` bytes, or says it will be: never
    held whole. The bytes are counted as they come off the socket: an answer in a content coding (gzip, ...)
    is refused, since this node asks for none and one gzip read of 64 KiB may decode to 64 MiB."""
    too_long = BadAnswer(f"{request}: the answer is longer than the {limit} bytes {bound}", response.status_code)
    declared = response.headers.get("Content-Length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise too_long
    coding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if coding not in ("", "identity"):
        raise BadAnswer(f"{request}: the answer is in the content coding {coding[:40]!r}, where this node asked "
                        "for none (Accept-Encoding: identity)", response.status_code)
    chunks, size = [], 0
    for chunk in response.iter_bytes():  # in no content coding (refused above): the bytes as they came
        size += len(chunk)
        if size > limit:
            raise too_long
        chunks.append(chunk)
    return b"".join(chunks)


def _error(method: str, url: str, response: httpx.Response, content: bytes, quote: bool) -> PeerError:
    """The error of an answer with an error status. Only a problem document's ``detail`` may be quoted
    (a peer's own explanation, cut short); any other body is never echoed."""
    try:
        answer = orjson.loads(content)
    except orjson.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        answer = None
    detail = answer.get("detail") if answer is not None and quote else None
    message = f"{method} {url}: {response.status_code}" + (f" {detail[:200]}" if isinstance(detail, str) else "")
    if response.status_code == 410:
        return CursorGone(message, 410, answer=answer)
    retry_after = None
    if response.status_code in (429, 503):
        try:
            retry_after = float(response.headers.get("Retry-After", "1"))
        except ValueError:
            retry_after = 1.0
    return PeerError(message, response.status_code, retry_after, answer)
