"""The S3-specific features: URLs and the registry, presign, server-side copy, reconfigure."""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from typing import Any

import anyio
import anyio.to_thread
import pytest

import asyncstore
from asyncstore.errors import ConfigError, InvalidKeyError, PermissionDeniedError
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
    assert capabilities["max_key_bytes"] == 1024


def test_capabilities_follow_the_prefix_and_the_engine() -> None:
    default = S3Module(bucket="b")
    assert default.capabilities()["list_order"] == "lexicographic"
    seaweed = S3Module(bucket="b", prefix="tenant/é", engine="seaweedfs")
    assert seaweed.capabilities()["list_order"] == "tree"
    assert seaweed.capabilities()["max_key_bytes"] == 1024 - len(b"tenant/\xc3\xa9/")


async def test_a_prefixed_store_checks_the_full_key_before_any_request(
    module_options: dict[str, Any], boto3_client: Any, bucket: str
) -> None:
    prefix = "tenant-é/"  # 10 bytes
    async with S3Module(prefix=prefix, **module_options) as store:
        limit = store.capabilities()["max_key_bytes"]
        assert limit == 1024 - len(prefix.encode())
        longest = "/".join(["k" * 200] * 4) + "/" + "k" * (limit - 804)
        await store.put(b"fits", key=longest)
        stored = boto3_client.get_object(Bucket=bucket, Key=prefix + longest)
        assert stored["Body"].read() == b"fits"
        requests = await count_requests(store)
        too_long = longest + "k"
        operations = [
            lambda: store.put(b"x", key=too_long),
            lambda: store.stat(too_long),
            lambda: store.get_read_stream(too_long),
            lambda: store.delete(too_long),
            lambda: store.copy(longest, key=too_long),
            lambda: store.presign(too_long),
        ]
        for operation in operations:
            with pytest.raises(InvalidKeyError, match=f"the limit is {limit}"):
                await operation()
        assert sum(requests.values()) == 0


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


async def test_presigned_get_and_put_with_a_plain_http_client(
    s3_module: S3Module, s3_endpoint: Any
) -> None:
    await s3_module.put(b"presigned bytes", key="shared/file.txt", content_type="text/plain")
    url = await s3_module.presign("shared/file.txt", expires=60)
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url  # SigV4, as AWS requires
    assert await anyio.to_thread.run_sync(fetch, url) == b"presigned bytes"
    upload = await s3_module.presign("shared/upload.bin", method="PUT", expires=60)
    # A client sends the Content-Type it likes (SigV2 signed it, so the URL failed then).
    request = urllib.request.Request(
        upload,
        data=b"uploaded by url",
        method="PUT",
        headers={"Content-Type": "application/octet-stream"},
    )
    await anyio.to_thread.run_sync(fetch, request)
    async with await s3_module.get_read_stream("shared/upload.bin") as stream:
        assert await stream.read() == b"uploaded by url"
    typed = urllib.request.Request(
        upload, data=b"typed", method="PUT", headers={"Content-Type": "text/csv"}
    )
    await anyio.to_thread.run_sync(fetch, typed)
    assert (await s3_module.stat("shared/upload.bin")).content_type == "text/csv"
    if s3_endpoint.checks_signatures:
        forged = url.replace("shared/file.txt", "shared/upload.bin")
        with pytest.raises(urllib.error.HTTPError) as refused:
            await anyio.to_thread.run_sync(fetch, forged)
        refused.value.close()
        assert refused.value.code == 403
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
    if s3_endpoint.read_only is not None:
        # Real credentials to rotate to: the server's read-only user.
        key_id, secret = s3_endpoint.read_only
        rotated = {"access_key_id": key_id, "secret_access_key": secret}
    else:
        # moto accepts any credentials: a made-up session token shows the swap.
        rotated = {
            "access_key_id": s3_endpoint.access_key_id,
            "secret_access_key": s3_endpoint.secret_access_key,
            "session_token": "rotated-token",
        }
    await s3_module.reconfigure(**rotated)
    for name, value in rotated.items():
        assert getattr(s3_module.options, name) == value
    # New work uses a new client; the open stream finishes on the old one.
    assert await s3_module.get_size("obj") == len(data)
    if s3_endpoint.read_only is not None and s3_endpoint.checks_signatures:
        with pytest.raises(PermissionDeniedError):
            await s3_module.put(b"denied", key="obj")
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


async def test_no_content_type_reads_back_as_none_everywhere(
    module_options: dict[str, Any], boto3_client: Any, bucket: str
) -> None:
    # SeaweedFS would guess "text/plain; charset=utf-8" for these bytes were none sent.
    data = b"plain words, no type given"
    async with S3Module(part_size=5 * MiB, **module_options) as store:
        await store.put(data, key="untyped")
        await store.put(pattern(6 * MiB, seed=34), key="untyped-parts")
        store._copy_limit = 5 * MiB  # the multipart copy sets the type itself
        await store.copy("untyped-parts", key="untyped-copy")
        for key in ("untyped", "untyped-parts", "untyped-copy"):
            assert (await store.stat(key)).content_type is None, key
            head = boto3_client.head_object(Bucket=bucket, Key=key)
            assert head["ContentType"] == "application/octet-stream", key
        async with await store.get_read_stream("untyped") as stream:
            assert stream.info.content_type is None
    # An object another tool stored with AWS's own label for "no type" reads as untyped too.
    boto3_client.put_object(
        Bucket=bucket, Key="labelled", Body=b"x", ContentType="binary/octet-stream"
    )
    async with S3Module(**module_options) as store:
        assert (await store.stat("labelled")).content_type is None


async def test_an_endpoint_of_another_engine_is_named_in_one_warning(
    module_options: dict[str, Any], s3_endpoint: Any, caplog: pytest.LogCaptureFixture
) -> None:
    untold = {name: value for name, value in module_options.items() if name != "engine"}
    with caplog.at_level(logging.WARNING, logger="asyncstore_s3"):
        async with S3Module(**untold) as store:
            await store.put(b"x", key="a")
            await store.put(b"y", key="b")
        async with S3Module(**module_options) as store:
            await store.put(b"z", key="c")
    warnings = [r.getMessage() for r in caplog.records if r.name == "asyncstore_s3"]
    if s3_endpoint.name == "seaweedfs":
        assert len(warnings) == 1
        assert "set engine='seaweedfs'" in warnings[0] and "SeaweedFS" in warnings[0]
    else:
        assert warnings == []
