"""Server-side encryption options reach every request that needs them.

moto records SSE-S3 and SSE-KMS (HEAD reports them) but ignores SSE-C, so SSE-C is checked
by recording the headers each request carries on its way out. SeaweedFS encrypts with SSE-S3
(with the key-encryption key its fixture configures) and SSE-C, and has no KMS unless one is
configured: there, SSE-KMS writes must fail and store nothing.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import AsyncIterator
from typing import Any

import anyio.lowlevel
import pytest

from asyncstore.errors import StorageError
from asyncstore_s3 import S3Module
from tests.s3server import Endpoint

from ._helpers import MiB, pattern

pytestmark = pytest.mark.anyio

PART = 5 * MiB
LARGE = 2 * PART + 1234


async def streamed(data: bytes, size: int = 1 * MiB) -> AsyncIterator[bytes]:
    for index in range(0, len(data), size):
        await anyio.lowlevel.checkpoint()
        yield data[index : index + size]


async def write_all_ways(store: S3Module) -> None:
    """A single PUT, a multipart upload and a server-side copy."""
    await store.put(b"small object", key="small")
    await store.put(streamed(pattern(LARGE, seed=3)), key="large")
    await store.copy("small", key="copied")


async def read_all_ways(store: S3Module) -> None:
    async with await store.get_read_stream("small") as stream:
        assert await stream.read() == b"small object"
    async with await store.get_read_stream("large", start=PART - 10, end=PART + 10) as stream:
        assert await stream.read() == pattern(LARGE, seed=3)[PART - 10 : PART + 10]
    assert (await store.stat("copied")).size == len(b"small object")


@pytest.mark.parametrize("kms", [False, True], ids=["sse-s3", "sse-kms"])
async def test_server_side_encryption_on_every_write(
    kms: bool, module_options: dict[str, Any], boto3_client: Any, bucket: str, s3_endpoint: Endpoint
) -> None:
    options: dict[str, Any] = {"server_side_encryption": "AES256"}
    if kms and not s3_endpoint.kms:
        # No KMS to hold the key: SeaweedFS answers InternalError (so, after the retries,
        # TransientError); what matters is that the write fails and stores nothing.
        options = {"server_side_encryption": "aws:kms", "max_attempts": 1}
        async with S3Module(part_size=PART, **options, **module_options) as store:
            with pytest.raises(StorageError):
                await store.put(b"small object", key="small")
            with pytest.raises(StorageError):
                await store.put(streamed(pattern(LARGE, seed=3)), key="large")
        assert boto3_client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
        assert boto3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
        return
    if kms:
        key_id = s3_endpoint.create_kms_key()
        options = {"server_side_encryption": "aws:kms", "sse_kms_key_id": key_id}
    async with S3Module(part_size=PART, **options, **module_options) as store:
        await write_all_ways(store)
        await read_all_ways(store)
    for key in ("small", "large", "copied"):
        head = boto3_client.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == options["server_side_encryption"], key
        if kms:
            assert head["SSEKMSKeyId"] == options["sse_kms_key_id"], key


async def test_customer_key_is_sent_with_every_request(module_options: dict[str, Any]) -> None:
    key = os.urandom(32)
    key_md5 = base64.b64encode(hashlib.md5(key).digest()).decode()
    sent: list[tuple[str, dict[str, str]]] = []

    def record(request: Any, **kwargs: Any) -> None:
        headers = {
            name.lower(): value.decode() if isinstance(value, bytes) else value
            for name, value in request.headers.items()
        }
        sent.append((f"{request.method} {request.url.split('?', 1)[-1]}", headers))

    async with S3Module(
        part_size=PART, sse_customer_key=base64.b64encode(key).decode(), **module_options
    ) as store:
        async with store._pool.client() as client:
            client.meta.events.register("before-send.s3", record)
        await write_all_ways(store)
        await read_all_ways(store)
        await store.delete("small")
    object_requests = [
        (method, headers)
        for method, headers in sent
        if not method.startswith("DELETE") and "x-amz-copy-source" not in headers
    ]
    copies = [headers for _, headers in sent if "x-amz-copy-source" in headers]
    assert len(object_requests) >= 6  # put, multipart (create, parts, complete), gets, head
    for method, headers in object_requests:
        assert headers.get("x-amz-server-side-encryption-customer-algorithm") == "AES256", method
        assert headers["x-amz-server-side-encryption-customer-key-md5"] == key_md5
    assert copies, "the copy was not server-side"
    for headers in copies:
        prefix = "x-amz-copy-source-server-side-encryption-customer-"
        assert headers[prefix + "algorithm"] == "AES256"
        assert headers[prefix + "key-md5"] == key_md5
        assert headers["x-amz-server-side-encryption-customer-key-md5"] == key_md5
    assert [method.split()[0] for method, _ in sent].count("DELETE") == 1
