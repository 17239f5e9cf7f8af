"""The S3-specific features: URLs and the registry, presign, server-side copy, reconfigure."""

from __future__ import annotations

import urllib.request
from typing import Any

import anyio
import anyio.to_thread
import pytest

import asyncstore
from asyncstore.errors import ConfigError
from asyncstore_s3 import S3Module

from ._helpers import MiB, count_requests, crc32_b64, pattern

pytestmark = pytest.mark.anyio


def test_options_from_url() -> None:
    options = S3Module.options_from_url(
        "s3://my-bucket/some/prefix?endpoint_url=http://127.0.0.1:9000&region=eu-west-1"
        "&part_size=16777216"
    )
    assert options == {
        "bucket": "my-bucket",
        "prefix": "some/prefix",
        "endpoint_url": "http://127.0.0.1:9000",
        "region": "eu-west-1",
        "part_size": "16777216",
    }
    assert S3Module.options_from_url("s3://b") == {"bucket": "b"}
    with pytest.raises(ConfigError):
        S3Module.options_from_url("s3:///no-bucket")


def test_plugin_is_registered() -> None:
    names = {info.name: info for info in asyncstore.plugins()}
    assert names["s3"].target == "asyncstore_s3:S3Module"
    described = asyncstore.describe_plugin("s3")
    options = {option.name for option in described.options}
    assert {"bucket", "prefix", "endpoint_url", "region", "part_size"} <= options


async def test_open_store_from_url(s3_endpoint: Any, bucket: str, boto3_client: Any) -> None:
    url = (
        f"s3://{bucket}/via-url?endpoint_url={s3_endpoint.url}&region={s3_endpoint.region}"
        f"&access_key_id={s3_endpoint.access_key_id}"
        f"&secret_access_key={s3_endpoint.secret_access_key}&part_size=6291456&max_attempts=2"
    )
    async with asyncstore.open_store(url) as store:
        assert isinstance(store, S3Module)
        assert store.options.part_size == 6 * MiB
        assert store.options.prefix == "via-url/"
        await store.put(b"hello", key="greeting")
    assert boto3_client.get_object(Bucket=bucket, Key="via-url/greeting")["Body"].read() == b"hello"


async def test_capabilities(s3_module: S3Module) -> None:
    capabilities = s3_module.capabilities()
    for name in ("list", "server_side_copy", "presign", "reconfigure", "named_keys"):
        assert capabilities[name] is True
    assert capabilities["max_object_size"] == 5 << 40
    assert capabilities["cdmi_encryption"] == []


async def test_statistics(s3_module: S3Module) -> None:
    await s3_module.put(b"12345", key="a")
    await s3_module.put(b"678", key="b/c")
    stats = await s3_module.statistics()
    assert stats["capacity"] == {"total": None, "used": None, "free": None}
    assert "objects" not in stats
    counted = await s3_module.statistics(count_objects=True)
    assert (counted["objects"], counted["bytes"]) == (2, 8)


def fetch(request: str | urllib.request.Request) -> bytes:
    """Send a request with the standard library's plain HTTP client."""
    with urllib.request.urlopen(request, timeout=10) as response:
        return bytes(response.read())


async def test_presigned_get_and_put_with_a_plain_http_client(s3_module: S3Module) -> None:
    await s3_module.put(b"presigned bytes", key="shared/file.txt", content_type="text/plain")
    url = await s3_module.presign("shared/file.txt", expires=60)
    assert await anyio.to_thread.run_sync(fetch, url) == b"presigned bytes"
    upload = await s3_module.presign("shared/upload.bin", method="PUT", expires=60)
    # urllib would label the body as a form otherwise, which servers may parse as one.
    request = urllib.request.Request(
        upload,
        data=b"uploaded by url",
        method="PUT",
        headers={"Content-Type": "application/octet-stream"},
    )
    await anyio.to_thread.run_sync(fetch, request)
    async with await s3_module.get_read_stream("shared/upload.bin") as stream:
        assert await stream.read() == b"uploaded by url"
    with pytest.raises(ValueError):
        await s3_module.presign("x", method="PATCH")
    with pytest.raises(ValueError):
        await s3_module.presign("x", expires=0)


async def test_server_side_copy_sends_no_bytes(s3_module: S3Module) -> None:
    data = pattern(2 * MiB, seed=31)
    await s3_module.put(data, key="src", metadata={"m": "1"}, content_type="text/csv")
    requests = await count_requests(s3_module)
    assert await s3_module.copy("src", key="dst") == "dst"
    assert dict(requests) == {"HeadObject": 1, "CopyObject": 1}
    info = await s3_module.stat("dst")
    assert (info.content_type, dict(info.metadata)) == ("text/csv", {"m": "1"})
    async with await s3_module.get_read_stream("dst") as stream:
        assert await stream.read() == data


async def test_copy_onto_itself_keeps_the_object(s3_module: S3Module) -> None:
    # S3 answers InvalidRequest to a CopyObject of an object onto itself without changes.
    await s3_module.put(b"same", key="self", metadata={"m": "1"}, content_type="text/csv")
    assert await s3_module.copy("self", key="self") == "self"
    info = await s3_module.stat("self")
    assert (info.size, info.content_type, dict(info.metadata)) == (4, "text/csv", {"m": "1"})


async def test_multipart_server_side_copy(
    module_options: dict[str, Any], boto3_client: Any, bucket: str
) -> None:
    data = pattern(11 * MiB + 3, seed=32)
    async with S3Module(part_size=5 * MiB, **module_options) as store:
        await store.put(data, key="big", metadata={"m": "2"}, content_type="video/mp4")
        store._copy_limit = 6 * MiB  # stands in for S3's 5 GiB CopyObject limit
        requests = await count_requests(store)
        target = await store.copy("big")
        assert requests["UploadPartCopy"] == 3
        assert requests["CopyObject"] == 0
        info = await store.stat(target)
        assert (info.size, info.content_type, dict(info.metadata)) == (
            len(data),
            "video/mp4",
            {"m": "2"},
        )
        async with await store.get_read_stream(target) as stream:
            assert await stream.read() == data
    # The copy has a CRC32 of the whole, as a put in parts has, for whole reads to verify.
    head = boto3_client.head_object(Bucket=bucket, Key=target, ChecksumMode="ENABLED")
    assert head["ChecksumType"] == "FULL_OBJECT"
    assert head["ChecksumCRC32"] == crc32_b64(data)


async def test_reconfigure_swaps_credentials_without_dropping_streams(
    s3_module: S3Module, s3_endpoint: Any
) -> None:
    data = pattern(MiB, seed=33)
    await s3_module.put(data, key="obj")
    old_client = s3_module._pool._current
    stream = await s3_module.get_read_stream("obj")
    head = await stream.read(1000)
    await s3_module.reconfigure(
        access_key_id=s3_endpoint.access_key_id,
        secret_access_key=s3_endpoint.secret_access_key,
        session_token="rotated-token",
    )
    assert s3_module.options.session_token == "rotated-token"
    # New work uses a new client; the open stream finishes on the old one.
    assert await s3_module.get_size("obj") == len(data)
    assert s3_module._pool._current is not old_client
    assert old_client is not None and not old_client.closed
    rest = await stream.read()
    await stream.aclose()
    assert head + rest == data
    assert old_client.closed
    with pytest.raises(ConfigError, match="bucket"):
        await s3_module.reconfigure(bucket="other")


async def test_one_client_for_many_concurrent_tasks(s3_module: S3Module) -> None:
    async def work(index: int) -> None:
        await s3_module.put(b"x" * index, key=f"many/{index}")
        assert await s3_module.get_size(f"many/{index}") == index

    async with anyio.create_task_group() as group:
        for index in range(64):
            group.start_soon(work, index)
    assert s3_module._pool._retired == []
    assert len([i async for i in s3_module.list("many/")]) == 64


async def test_server_side_encryption_option(
    module_options: dict[str, Any], boto3_client: Any, bucket: str
) -> None:
    async with S3Module(server_side_encryption="AES256", **module_options) as store:
        assert store.capabilities()["cdmi_encryption"] == ["AES_256"]
        await store.put(b"secret data", key="enc")
        async with await store.get_read_stream("enc") as stream:
            assert await stream.read() == b"secret data"
    assert boto3_client.head_object(Bucket=bucket, Key="enc")["ServerSideEncryption"] == "AES256"


async def test_aclose_then_reuse(module_options: dict[str, Any]) -> None:
    store = S3Module(**module_options)
    await store.put(b"a", key="a")
    await store.aclose()
    assert store._pool._current is None
    assert await store.get_size("a") == 1  # a new client is created on use
    await store.aclose()
