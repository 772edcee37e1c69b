"""The blob store, each behaviour on both stores: files in a temp dir, and S3 over HTTP.

The S3 store talks to a real S3-compatible server, moto's, started once for the
module on 127.0.0.1 at a free port with fake credentials; every test gets a
bucket of its own. Nothing of boto3 is mocked.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from infrastructure.blobs import (
    Blob,
    BlobMismatch,
    BlobNotFound,
    BlobStore,
    BlobStoreUnavailable,
    BlobTooLarge,
    FileBlobStore,
    blob_store_for,
    sniff,
)
from infrastructure.settings import Settings

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

from infrastructure.blobs_s3 import S3BlobStore  # noqa: E402  (after the skip: boto3 is an optional extra)

MakeStore = Callable[..., BlobStore]
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452") + b"\x00" * 64
DATA = bytes(range(256)) * 1000  # 256,000 bytes: several 64 KiB chunks, and not a multiple of one


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as env:
        for var, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                           ("AWS_DEFAULT_REGION", "us-east-1")):
            env.setenv(var, value)
        for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            env.delenv(var, raising=False)
        port = _free_port()
        server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.stop()


def _bucket(endpoint: str) -> str:
    name = f"blobs-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["file", "s3"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> MakeStore:
    if request.param == "file":
        return lambda max_bytes=1 << 20: FileBlobStore(tmp_path / "blobs", max_bytes=max_bytes)
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = _bucket(endpoint)
    return lambda max_bytes=1 << 20: S3BlobStore(bucket, prefix="node-a/", endpoint_url=endpoint,
                                                  max_bytes=max_bytes)


@pytest.fixture
def store(make_store: MakeStore) -> BlobStore:
    return make_store()


def test_a_blob_put_reads_back_under_its_sha256(store: BlobStore) -> None:
    blob = store.put(DATA)

    assert blob == Blob(sha(DATA), len(DATA))
    assert store.has(blob.sha256)
    assert store.info(blob.sha256) == blob
    assert store.read(blob.sha256) == DATA


def test_putting_the_same_bytes_twice_stores_one_blob(store: BlobStore) -> None:
    first = store.put(b"hello")

    second = store.put(b"hello")
    third = store.put_expecting(sha(b"hello"), b"hello")

    assert first == second == third
    assert store.read(first.sha256) == b"hello"


def test_an_empty_blob_is_a_blob(store: BlobStore) -> None:
    blob = store.put(b"")

    assert blob == Blob(sha(b""), 0)
    assert store.read(blob.sha256) == b""
    assert list(store.open_chunks(blob.sha256)) == []


def test_an_unknown_blob_is_none_or_not_found(store: BlobStore) -> None:
    unknown = sha(b"never stored")

    assert store.info(unknown) is None
    assert not store.has(unknown)
    with pytest.raises(BlobNotFound):
        store.read(unknown)
    with pytest.raises(BlobNotFound):
        store.read(unknown, 5, 5)
    with pytest.raises(BlobNotFound):
        store.read(unknown, 10)
    with pytest.raises(BlobNotFound):
        store.open_chunks(unknown)


def test_bytes_that_do_not_match_the_expected_hash_are_refused_and_nothing_is_stored(store: BlobStore) -> None:
    genuine = b"the image the transaction signed"
    tampered = b"the image a peer sent instead"

    with pytest.raises(BlobMismatch) as refused:
        store.put_expecting(sha(genuine), tampered)

    assert refused.value.status == 422
    assert refused.value.extra == {"expected": sha(genuine), "actual": sha(tampered)}
    assert not store.has(sha(genuine))
    assert not store.has(sha(tampered))


def test_bytes_that_match_the_expected_hash_are_stored(store: BlobStore) -> None:
    blob = store.put_expecting(sha(DATA), DATA)

    assert blob == Blob(sha(DATA), len(DATA))
    assert store.read(sha(DATA)) == DATA


@pytest.mark.parametrize(("start", "end"), [(0, 10), (0, 1), (1000, 70_000), (len(DATA) - 10, len(DATA)),
                                            (len(DATA) - 10, None), (5, None), (7, 7), (0, len(DATA) + 100),
                                            (len(DATA), None), (len(DATA) + 5, len(DATA) + 50)])
def test_a_byte_range_reads_like_a_slice(store: BlobStore, start: int, end: int | None) -> None:
    blob = store.put(DATA)

    assert store.read(blob.sha256, start, end) == DATA[start:end]


@pytest.mark.parametrize(("start", "end"), [(-1, None), (10, 5)])
def test_a_range_that_is_no_range_is_refused(store: BlobStore, start: int, end: int | None) -> None:
    blob = store.put(DATA)

    with pytest.raises(ValueError):
        store.read(blob.sha256, start, end)


@pytest.mark.parametrize("chunk", [1000, 64 * 1024, len(DATA), 1 << 20])
def test_chunks_join_to_the_blob_and_none_is_over_the_chunk_size(store: BlobStore, chunk: int) -> None:
    blob = store.put(DATA)

    with store.open_chunks(blob.sha256, chunk) as chunks:
        pieces = list(chunks)

    assert b"".join(pieces) == DATA
    assert all(0 < len(piece) <= chunk for piece in pieces)


def test_chunks_may_be_closed_before_the_end(store: BlobStore) -> None:
    blob = store.put(DATA)
    chunks = store.open_chunks(blob.sha256, 1000)

    first = next(chunks)
    chunks.close()

    assert first == DATA[:1000]
    assert list(chunks) == []


def test_a_blob_over_the_cap_is_refused_and_not_stored(make_store: MakeStore) -> None:
    store = make_store(max_bytes=1000)

    at_cap = store.put(b"x" * 1000)
    with pytest.raises(BlobTooLarge) as refused:
        store.put(b"y" * 1001)
    with pytest.raises(BlobTooLarge):
        store.put_expecting(sha(b"y" * 1001), b"y" * 1001)

    assert refused.value.status == 413
    assert store.has(at_cap.sha256)
    assert not store.has(sha(b"y" * 1001))


@pytest.mark.parametrize("bad", ["", "abc", sha(b"x").upper(), sha(b"x")[:63], sha(b"x") + "0",
                                 "../" + sha(b"x")[3:], "g" * 64, sha(b"x")[:62] + "/a", " " + sha(b"x")[1:],
                                 sha(b"x")[:63] + "\n"])
def test_a_malformed_sha256_is_refused_everywhere(store: BlobStore, bad: str) -> None:
    calls: list[Callable[[], object]] = [lambda: store.info(bad), lambda: store.has(bad), lambda: store.read(bad),
                                         lambda: store.read(bad, 0, 5), lambda: store.open_chunks(bad),
                                         lambda: store.put_expecting(bad, b"x")]

    for call in calls:
        with pytest.raises(ValueError):
            call()


def test_concurrent_puts_of_one_blob_leave_one_correct_blob(store: BlobStore) -> None:
    barrier = threading.Barrier(8)
    results: list[Blob] = []
    errors: list[BaseException] = []

    def put() -> None:
        try:
            barrier.wait()
            results.append(store.put(DATA))
        except BaseException as e:  # collected, and the test fails on it below
            errors.append(e)

    threads = [threading.Thread(target=put) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert results == [Blob(sha(DATA), len(DATA))] * 8
    assert store.read(sha(DATA)) == DATA
    if isinstance(store, FileBlobStore):  # one file, no temporary file left behind
        assert [p.name for p in store.root.rglob("*") if p.is_file()] == [sha(DATA)]


def test_the_file_store_lays_blobs_out_in_two_levels_of_directories(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")

    blob = store.put(b"hello")

    h = blob.sha256
    assert (tmp_path / "blobs" / h[:2] / h[2:4] / h).read_bytes() == b"hello"


def test_the_s3_store_keys_blobs_under_its_prefix(s3_endpoint: str) -> None:
    bucket = _bucket(s3_endpoint)
    store = S3BlobStore(bucket, prefix="node-a/", endpoint_url=s3_endpoint)

    blob = store.put(b"hello")

    listed = boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(Bucket=bucket)["Contents"]
    assert [obj["Key"] for obj in listed] == [f"node-a/blobs/{blob.sha256}"]


def test_the_settings_choose_the_store(tmp_path: Path, s3_endpoint: str) -> None:
    bucket = _bucket(s3_endpoint)
    on_files = blob_store_for(Settings(data_dir=tmp_path, max_blob_bytes=10))
    on_s3 = blob_store_for(Settings.from_env({"FEDSYNC_DATA_DIR": str(tmp_path), "FEDSYNC_MAX_BLOB_BYTES": "10",
                                              "FEDSYNC_BLOB_STORE": f"s3://{bucket}/fed/sync/",
                                              "FEDSYNC_S3_ENDPOINT_URL": s3_endpoint}))

    on_s3.put(b"hello")

    assert isinstance(on_files, FileBlobStore) and on_files.root == tmp_path / "blobs"
    assert isinstance(on_s3, S3BlobStore) and (on_s3.bucket, on_s3.prefix) == (bucket, "fed/sync/")
    assert on_files.max_bytes == on_s3.max_bytes == 10
    assert on_s3.has(sha(b"hello"))


@pytest.mark.parametrize("failure", ["no such bucket", "nobody listening"])
def test_a_failing_bucket_is_a_503_with_retry_after_for_every_operation(s3_endpoint: str, failure: str) -> None:
    from botocore.config import Config

    if failure == "no such bucket":  # moto answers NoSuchBucket: an error code that is no missing blob
        store = S3BlobStore(f"gone-{uuid.uuid4().hex[:8]}", endpoint_url=s3_endpoint)
    else:  # a connection refused, tried once
        client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{_free_port()}",
                              config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2))
        store = S3BlobStore("any", client=client)
    expected = "NoSuchBucket" if failure == "no such bucket" else "EndpointConnectionError"

    operations = [lambda: store.put(DATA), lambda: store.read(sha(DATA)), lambda: store.read(sha(DATA), 2, 4),
                  lambda: store.open_chunks(sha(DATA)), lambda: store.put_expecting(sha(DATA), DATA)]
    if failure == "no such bucket":  # a HEAD's 404 has no body to say which: "no such blob", as S3 says
        assert store.info(sha(DATA)) is None
    else:
        operations += [lambda: store.info(sha(DATA)), lambda: store.has(sha(DATA))]

    for operation in operations:
        with pytest.raises(BlobStoreUnavailable, match=expected) as refused:
            operation()
        assert (refused.value.status, refused.value.extra) == (503, {"retry_after": 5})


def test_a_blob_store_setting_that_names_no_store_is_refused() -> None:
    with pytest.raises(ValueError):
        Settings.from_env({"FEDSYNC_BLOB_STORE": "ftp://host/blobs"})


@pytest.mark.parametrize(("data", "declared", "expected"), [
    (PNG, None, "image/png"),
    (PNG, "text/html", "image/png"),  # the bytes win over the declared type
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "text/plain", "application/pdf"),
    (b"<html><script>alert(1)</script></html>", "text/html", "application/octet-stream"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "image/svg+xml",
     "application/octet-stream"),
    (b"<p>hi</p>", "application/xhtml+xml", "application/octet-stream"),
    (b"plain words", "text/plain", "text/plain"),
    (b"plain words", "Text/Plain; charset=utf-8", "text/plain"),
    (b"# Title", "text/markdown", "text/markdown"),
    (b"a,b\n1,2\n", "text/csv", "text/csv"),
    (b"plain words", None, "application/octet-stream"),
    (b"\x00\x01\x02", "application/x-whatever", "application/octet-stream"),
    (b"", "text/plain", "text/plain"),
])
def test_sniff_trusts_the_bytes_then_only_harmless_declared_text(data: bytes, declared: str | None,
                                                                  expected: str) -> None:
    assert sniff(data, declared) == expected
