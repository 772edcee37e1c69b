"""The content-addressed blob store: an attachment's bytes, named by their SHA-256.

Transactions carry an attachment's metadata and the hash of its content, never
the bytes; the bytes live here, under their hash, so the same content is
stored once, a blob never changes once written, and a blob fetched from a peer
is checked against the hash its signed transaction names before it is kept
(``put_expecting``). Two stores behave alike behind ``BlobStore``: files under
the data dir (``FileBlobStore``, the default) and an S3-compatible bucket
(``S3BlobStore`` in ``infrastructure/blobs_s3.py``, boto3 being optional).

Rules every store keeps:
- a hash argument is 64 lowercase hex digits, or a ``ValueError``: it becomes a
  path or a key, so nothing else may reach one;
- a blob over ``max_bytes`` is refused (``BlobTooLarge``) before it is stored;
- a blob is written whole or not at all, and never rewritten once present;
- ``read`` takes a half-open byte range ``[start, end)`` like a slice: an end
  past the blob is cut at its size, a start at or past it reads nothing.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

import filetype

from domain.errors import DomainError, NotFound, TooLarge

if TYPE_CHECKING:
    from infrastructure.settings import Settings

CHUNK = 64 * 1024
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class BlobMismatch(DomainError):
    """Bytes that do not hash to the SHA-256 they were offered under (a tampered or broken blob)."""

    status = 422
    type = "blob-mismatch"
    title = "Blob does not match its hash"


class BlobTooLarge(TooLarge):
    """A blob over the node's size cap (``FEDSYNC_MAX_BLOB_BYTES``)."""

    type = "blob-too-large"
    title = "Blob too large"


class BlobNotFound(NotFound):
    """No blob with that SHA-256 in this node's store."""

    type = "blob-not-found"
    title = "Blob not found"


class BlobStoreUnavailable(DomainError):
    """The blob store did not do what was asked (down, unreachable, refusing this node's credentials): the
    request may succeed later; nothing was changed by it."""

    status = 503
    type = "blob-store-unavailable"
    title = "Attachment store unavailable"


@dataclass(frozen=True)
class Blob:
    sha256: str
    size: int


class BlobStore(Protocol):
    max_bytes: int

    def put(self, data: bytes) -> Blob:
        """Store ``data`` under its SHA-256 (nothing happens if it is already there)."""
        ...

    def put_expecting(self, sha256: str, data: bytes) -> Blob:
        """Store ``data`` only if it hashes to ``sha256`` (else ``BlobMismatch``, nothing stored)."""
        ...

    def info(self, sha256: str) -> Blob | None: ...

    def has(self, sha256: str) -> bool: ...

    def read(self, sha256: str, start: int = 0, end: int | None = None) -> bytes:
        """The bytes ``[start, end)`` of a blob (``BlobNotFound`` if there is none)."""
        ...

    def open_chunks(self, sha256: str, chunk: int = CHUNK) -> Chunks:
        """The blob in pieces of at most ``chunk`` bytes, without holding it whole."""
        ...


def check_sha256(sha256: str) -> str:
    if not isinstance(sha256, str) or not _SHA256_RE.match(sha256):
        raise ValueError(f"not a SHA-256 (64 lowercase hex digits): {sha256!r}")
    return sha256


def check_range(start: int, end: int | None) -> None:
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"not a byte range: [{start}, {end})")


def checked(data: bytes, max_bytes: int, expected: str | None = None) -> Blob:
    """The blob ``data`` would be, once it passes the size cap and (if given) the expected hash."""
    if len(data) > max_bytes:
        raise BlobTooLarge(f"blob of {len(data)} bytes is over the cap of {max_bytes} bytes",
                           size=len(data), max_bytes=max_bytes)
    sha256 = hashlib.sha256(data).hexdigest()
    if expected is not None and sha256 != check_sha256(expected):
        raise BlobMismatch(f"bytes hash to {sha256}, not to {expected}", expected=expected, actual=sha256)
    return Blob(sha256, len(data))


class Chunks(Iterator[bytes]):
    """A blob's pieces, read on demand; closes its source when exhausted, on ``close()`` or at ``with`` exit."""

    def __init__(self, read: Callable[[int], bytes], close: Callable[[], None], chunk: int) -> None:
        if chunk <= 0:
            close()
            raise ValueError(f"chunk size must be positive: {chunk}")
        self._read, self._close, self._chunk = read, close, chunk
        self._closed = False

    def __next__(self) -> bytes:
        if self._closed:
            raise StopIteration
        piece = self._read(self._chunk)
        if not piece:
            self.close()
            raise StopIteration
        return piece

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self) -> Chunks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FileBlobStore:
    """Blobs as files ``<root>/<first 2 hex>/<next 2 hex>/<sha256>`` (root: ``<data dir>/blobs``).

    Two levels of 256 directories keep any one directory small. A blob is written
    to a temporary file in its final directory, fsynced, then linked into place
    (a link, unlike a rename, never replaces a file that is already there), and
    the directory is fsynced, so after ``put`` returns the blob survives a crash
    and no reader ever sees part of one.
    """

    def __init__(self, root: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    def path(self, sha256: str) -> Path:
        check_sha256(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> Blob:
        return self._store(checked(data, self.max_bytes), data)

    def put_expecting(self, sha256: str, data: bytes) -> Blob:
        return self._store(checked(data, self.max_bytes, expected=sha256), data)

    def info(self, sha256: str) -> Blob | None:
        try:
            return Blob(sha256, self.path(sha256).stat().st_size)
        except FileNotFoundError:
            return None

    def has(self, sha256: str) -> bool:
        return self.info(sha256) is not None

    def read(self, sha256: str, start: int = 0, end: int | None = None) -> bytes:
        check_range(start, end)
        with self._open(sha256) as file:
            file.seek(start)
            return file.read() if end is None else file.read(end - start)

    def open_chunks(self, sha256: str, chunk: int = CHUNK) -> Chunks:
        file = self._open(sha256)
        return Chunks(file.read, file.close, chunk)

    def _open(self, sha256: str) -> BinaryIO:
        try:
            return self.path(sha256).open("rb")
        except FileNotFoundError:
            raise BlobNotFound(f"no blob {sha256}") from None

    def _store(self, blob: Blob, data: bytes) -> Blob:
        path = self.path(blob.sha256)
        if path.exists():
            return blob
        _make_dirs(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            _link_no_clobber(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        _fsync_dir(path.parent)
        return blob


def _link_no_clobber(tmp: str, path: Path) -> None:
    """Put ``tmp`` at ``path`` unless a blob is already there (another writer's: the same bytes)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    except OSError as e:
        if e.errno not in _NO_HARD_LINKS:
            raise
        os.replace(tmp, path)  # still atomic: a reader sees the whole blob or none


_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK}


def _make_dirs(directory: Path) -> None:
    """Create ``directory`` and its missing parents, fsyncing each parent that gains an entry."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for new in reversed(missing):
        try:
            new.mkdir()
        except FileExistsError:
            continue
        _fsync_dir(new.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Text types kept as declared when the bytes say nothing: a browser shows them as text and runs nothing.
_HARMLESS_TEXT = frozenset({"text/plain", "text/markdown", "text/csv"})
# Never served as what they claim, even if a detector named them: a browser runs the script an HTML page or an
# SVG image (or XML that becomes either) may hold, in the node's origin, where an editor's session lives.
_ACTIVE = frozenset({"text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml",
                     "text/javascript", "application/javascript"})
OCTET_STREAM = "application/octet-stream"


def sniff(data: bytes, declared: str | None = None) -> str:
    """The media type to serve ``data`` as: what its bytes show, else a harmless declared text type, else bytes.

    A declared type is the uploader's (or a peer's) word, so it is trusted only where a lie costs nothing:
    ``text/html`` or ``image/svg+xml`` declared for a blob would let anyone who may attach a file run script
    on the node's pages. Those become ``application/octet-stream`` (a download).
    """
    found = filetype.guess_mime(data[:8192]) if data else None
    if found:
        return OCTET_STREAM if found in _ACTIVE else found
    kind = (declared or "").split(";", 1)[0].strip().lower()
    return kind if kind in _HARMLESS_TEXT else OCTET_STREAM


def blob_store_for(settings: Settings) -> BlobStore:
    """The store ``FEDSYNC_BLOB_STORE`` names: ``file`` (``<data dir>/blobs``) or ``s3://bucket[/prefix]``."""
    if settings.blob_store == "file":
        return FileBlobStore(settings.data_dir / "blobs", max_bytes=settings.max_blob_bytes)
    from infrastructure.blobs_s3 import S3BlobStore  # here, not above: boto3 is an optional extra

    bucket, _, prefix = settings.blob_store.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    return S3BlobStore(bucket, prefix=f"{prefix}/" if prefix else "", endpoint_url=settings.s3_endpoint_url,
                       max_bytes=settings.max_blob_bytes)
