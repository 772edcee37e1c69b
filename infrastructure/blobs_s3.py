"""Blobs in an S3-compatible bucket (AWS S3, MinIO, Ceph, Garage, ...), behaving as ``FileBlobStore`` does.

A blob is the object ``<prefix>blobs/<sha256>``. boto3 is an optional extra
(``pip install fedsync[s3]``), imported when a store is made, so a node on
files never needs it. Credentials come the usual AWS way (``AWS_ACCESS_KEY_ID``
and ``AWS_SECRET_ACCESS_KEY``, a profile, an instance role), the region from
``region`` or ``AWS_REGION``/``AWS_DEFAULT_REGION``.

Writes are single PUTs (a blob is capped well under S3's 5 GiB limit for one)
carrying ``Content-MD5``, which every S3-compatible server checks, so a body
damaged on the way is refused rather than stored. botocore's own newer default
checksums (CRC32 headers and trailers on every request) are turned down to
"when required": several S3-compatible servers reject them.

Any other failure of the bucket (unreachable, a missing bucket, credentials
it refuses, its own 5xx) is ``BlobStoreUnavailable``: a 503 problem with
``Retry-After`` for the request that met it, not a 500.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from infrastructure.blobs import (
    CHUNK,
    DEFAULT_MAX_BYTES,
    Blob,
    BlobNotFound,
    BlobStoreUnavailable,
    Chunks,
    check_range,
    check_sha256,
    checked,
)

_MISSING = {"404", "NoSuchKey", "NotFound"}
RETRY_AFTER = 5  # seconds, said to the client when the bucket failed


class S3BlobStore:
    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None, region: str | None = None,
                 client: Any = None, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.max_bytes = max_bytes
        self._client = client if client is not None else _client(endpoint_url, region)
        from botocore.exceptions import BotoCoreError  # boto3's own dependency: there when a client is

        self._failures = (self._client.exceptions.ClientError, BotoCoreError)

    def key(self, sha256: str) -> str:
        return f"{self.prefix}blobs/{check_sha256(sha256)}"

    def put(self, data: bytes) -> Blob:
        return self._store(checked(data, self.max_bytes), data)

    def put_expecting(self, sha256: str, data: bytes) -> Blob:
        return self._store(checked(data, self.max_bytes, expected=sha256), data)

    def info(self, sha256: str) -> Blob | None:
        key = self.key(sha256)
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=key)
        except self._failures as e:
            if _code(e) in _MISSING:
                return None
            raise self._unavailable(e) from None
        return Blob(sha256, int(head["ContentLength"]))

    def has(self, sha256: str) -> bool:
        return self.info(sha256) is not None

    def read(self, sha256: str, start: int = 0, end: int | None = None) -> bytes:
        check_range(start, end)
        if end == start:  # an empty range is no HTTP Range at all: still say whether the blob exists
            if not self.has(sha256):
                raise BlobNotFound(f"no blob {sha256}")
            return b""
        byte_range = None if start == 0 and end is None else f"bytes={start}-{'' if end is None else end - 1}"
        try:
            body = self._get(sha256, byte_range)
        except _InvalidRange:  # a start at or past the end: nothing to read, as from a file
            if not self.has(sha256):
                raise BlobNotFound(f"no blob {sha256}") from None
            return b""
        with body:
            return body.read()

    def open_chunks(self, sha256: str, chunk: int = CHUNK) -> Chunks:
        body = self._get(sha256, None)
        return Chunks(body.read, body.close, chunk)

    def _get(self, sha256: str, byte_range: str | None) -> Any:
        """The object's streaming body (``BlobNotFound`` if there is no such object)."""
        extra = {"Range": byte_range} if byte_range else {}
        try:
            return self._client.get_object(Bucket=self.bucket, Key=self.key(sha256), **extra)["Body"]
        except self._failures as e:
            if _code(e) in _MISSING:
                raise BlobNotFound(f"no blob {sha256}") from None
            if _code(e) == "InvalidRange":
                raise _InvalidRange from None
            raise self._unavailable(e) from None

    def _store(self, blob: Blob, data: bytes) -> Blob:
        # Never rewritten once present; two writers racing past this check PUT the very same bytes.
        if self.has(blob.sha256):
            return blob
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        try:
            self._client.put_object(Bucket=self.bucket, Key=self.key(blob.sha256), Body=data, ContentMD5=md5,
                                    ContentType="application/octet-stream", Metadata={"sha256": blob.sha256})
        except self._failures as e:
            raise self._unavailable(e) from None
        return blob

    def _unavailable(self, error: Exception) -> BlobStoreUnavailable:
        what = _code(error) or type(error).__name__  # an error code or class: never the server's own words
        return BlobStoreUnavailable(f"the attachment store (S3 bucket {self.bucket}) failed: {what}; try again later",
                                    retry_after=RETRY_AFTER)


class _InvalidRange(Exception):
    """The object is shorter than the range's start."""


def _code(error: Any) -> str:
    response = getattr(error, "response", None)  # a ClientError's; a connection failure has none
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def _client(endpoint_url: str | None, region: str | None) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        # Path-style addressing (host/bucket/key): S3-compatible servers at an address or a single host name
        # have no per-bucket host names; AWS itself is left to choose.
        s3={"addressing_style": "path"} if endpoint_url else None,
        retries={"max_attempts": 5, "mode": "standard"},
    )
    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)
