"""Attachments across real ``fedsync serve`` processes, on both stores and both blob stores (files, and an
S3-compatible server: moto in server mode on 127.0.0.1): an item with an image attachment made on A reaches C
through the hub B; C serves the image from its own blob store and the bytes match by hash; a blob whose bytes
are not what its hash says is refused (and recorded), and fetched again once the sender has the right bytes;
an OWNER item's attachment is never served to a peer without a share."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from infrastructure.federation_client import PeerError
from infrastructure.local_cluster import NodeProcess, free_port
from tests.e2e.conftest import Spawner, link
from tests.e2e.test_conflicts_e2e import editor, ok
from tests.e2e.test_federation import pull

PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489") + os.urandom(2048)


@pytest.fixture(scope="module", params=["file", "s3"])
def blob_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The nodes' blob store settings: files in their data dirs, or buckets on one S3-compatible server."""
    if request.param == "file":
        yield {}
        return
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    credentials = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {name: os.environ.get(name) for name in credentials}
    os.environ.update(credentials)  # the test's own in-process nodes (admin()) reach the buckets too
    try:
        yield {"FEDSYNC_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}", **credentials}
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def nodes(spawn: Spawner, blob_env: dict[str, str], *names: str) -> list[NodeProcess]:
    made = []
    for name in names:
        env = dict(blob_env)
        if blob_env:
            bucket = f"fedsync-{name}-{os.urandom(4).hex()}"
            boto3.client("s3", endpoint_url=blob_env["FEDSYNC_S3_ENDPOINT_URL"], region_name="us-east-1",
                         aws_access_key_id="test", aws_secret_access_key="test").create_bucket(Bucket=bucket)
            env["FEDSYNC_BLOB_STORE"] = f"s3://{bucket}/blobs"
        made.append(spawn(name, start=False, env=env))
    spawn.start(*made)
    return made


def attach(node: NodeProcess, item: str, data: bytes) -> dict[str, Any]:
    with editor(node, "ann") as ann:
        return ok(ann.post(f"/items/{item}/attachments", files={"file": ("plaatje.png", data, "image/png")}), 201)


def content_on(node: NodeProcess, attachment: str) -> httpx.Response:
    with editor(node, "ed") as ed:
        return ed.get(f"/attachments/{attachment}/content")


def until_served(node: NodeProcess, attachment: str, timeout: float = 15.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # bounded
        answer = content_on(node, attachment)
        if answer.status_code == 200:
            return answer
        time.sleep(0.2)
    raise AssertionError(f"{node.name} did not serve {attachment}: {answer.status_code} {answer.text[:200]}")


@pytest.mark.slow(30)
def test_an_image_attachment_reaches_a_third_node_through_the_hub_and_is_served_from_its_own_store(
        spawn: Spawner, blob_env: dict[str, str]) -> None:
    a, hub, c = nodes(spawn, blob_env, "a", "hub", "c")
    link(a, hub)
    link(hub, c)
    with editor(a, "ann") as ann:
        item = ok(ann.post("/items", json={"title": "Les", "markdown": "plaatje\n"}), 201)
    added = attach(a, item["gid"], PNG)
    with editor(a, "ann") as ann:
        ok(ann.patch(f"/items/{item['gid']}", headers={"If-Match": f'"{item["head"]}"'},
                     json={"markdown": f"![plaatje]({{attachment:{added['gid']}}})\n"}))

    pull(hub, a)
    pull(c, hub)
    served = until_served(c, added["gid"])

    assert hashlib.sha256(served.content).hexdigest() == added["sha256"] and served.content == PNG
    assert served.headers["content-type"] == "image/png"
    a.stop()  # C serves it from its own store: A is gone
    assert content_on(c, added["gid"]).content == PNG
    with editor(c, "ed") as ed:
        html = ok(ed.get(f"/items/{item['gid']}/rendered"))["html"]
    assert f'src="/attachments/{added["gid"]}/content"' in html


@pytest.mark.slow(30)
def test_tampered_bytes_are_refused_and_an_owner_items_bytes_never_leave_without_a_share(
        spawn: Spawner, blob_env: dict[str, str], tmp_path: Path) -> None:
    a, b = nodes(spawn, blob_env, "a", "b")
    link(a, b)
    with editor(a, "ann") as ann:
        item = ok(ann.post("/items", json={"title": "Les", "markdown": "x\n"}), 201)
        private = ok(ann.post("/items", json={"title": "Mine", "markdown": "y\n", "scope": "OWNER"}), 201)
    added = attach(a, item["gid"], PNG)
    secret = attach(a, private["gid"], PNG + b"private")
    honest = a.admin()
    try:
        honest.blobs.put_expecting(added["sha256"], PNG)  # (already there)
        stored = honest.blobs  # swap A's bytes for others under the same name, as a lying peer would
        if blob_env:
            stored._client.put_object(Bucket=stored.bucket, Key=stored.key(added["sha256"]), Body=b"not the image")
        else:
            path = stored.path(added["sha256"])
            path.chmod(0o644)
            path.write_bytes(b"not the image")
    finally:
        honest.close()

    pull(b, a)
    assert content_on(b, added["gid"]).status_code == 503  # not kept, asked again on read, refused again
    with editor(b, "root", role="admin") as admin:
        refusals = ok(admin.get("/admin/refusals"))["refusals"]
    assert any(added["sha256"] in r["reason"] or "hash" in r["reason"] for r in refusals), refusals

    mended = a.admin()
    try:
        if blob_env:
            mended.blobs._client.put_object(Bucket=mended.blobs.bucket, Key=mended.blobs.key(added["sha256"]),
                                            Body=PNG)
        else:
            mended.blobs.path(added["sha256"]).write_bytes(PNG)
    finally:
        mended.close()
    assert until_served(b, added["gid"]).content == PNG  # fetched again on read, now right

    asking = b.admin()  # B asks A for the OWNER item's bytes directly, with its own node token
    try:
        with pytest.raises(PeerError, match="404"):
            asking.client.blob(a.name, a.base_url, secret["sha256"], 1 << 20)
    finally:
        asking.close()


@pytest.mark.parametrize("blob_env", ["s3"], indirect=True)  # a failing bucket (a disk's errors are the OS's)
def test_a_bucket_that_fails_answers_503_with_retry_after_and_stores_nothing(spawn: Spawner,
                                                                             blob_env: dict[str, str]) -> None:
    (a,) = nodes(spawn, blob_env, "a")
    with editor(a, "ann") as ann:
        item = ok(ann.post("/items", json={"title": "Les", "markdown": "x\n"}), 201)
    kept = attach(a, item["gid"], PNG)
    stored = a.query("SELECT COUNT(*) AS n FROM transactions")[0]["n"]
    s3 = boto3.client("s3", endpoint_url=blob_env["FEDSYNC_S3_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    bucket = a.env["FEDSYNC_BLOB_STORE"].removeprefix("s3://").split("/")[0]  # this node's own
    for listed in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=listed["Key"])
    s3.delete_bucket(Bucket=bucket)  # the bucket is gone (deleted by mistake, a wrong region, ...)

    with editor(a, "ann") as ann:
        upload = ann.post(f"/items/{item['gid']}/attachments", files={"file": ("b.png", PNG + b"more", "image/png")})
        read = ann.get(f"/attachments/{kept['gid']}/content")

    assert upload.status_code == 503, upload.text
    assert upload.json()["type"] == "urn:fedsync:problem:blob-store-unavailable"
    assert upload.headers["retry-after"] == "5" and "NoSuchBucket" in upload.json()["detail"]
    # S3 answers a HEAD in a missing bucket as for a missing object (no body to tell): "not here yet"
    assert read.status_code == 503 and read.json()["type"] == "urn:fedsync:problem:blob-missing", read.text
    assert a.query("SELECT COUNT(*) AS n FROM transactions")[0]["n"] == stored  # the refused upload made nothing
