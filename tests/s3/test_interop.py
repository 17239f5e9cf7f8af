"""Interop with plain boto3: the same objects, bytes, content types and metadata both ways."""

from __future__ import annotations

from typing import Any

import pytest

from asyncstore_s3 import S3Module

from ._helpers import MiB, pattern

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("size", [0, 1000, 6 * MiB], ids=["empty", "small", "multipart"])
async def test_asyncstore_writes_boto3_reads(
    module_options: dict[str, Any], boto3_client: Any, bucket: str, size: int
) -> None:
    data = pattern(size, seed=21)
    async with S3Module(prefix="app", part_size=5 * MiB, **module_options) as store:
        await store.put(
            data,
            key="dir/obj.json",
            content_type="application/json",
            metadata={"owner": "alice", "trace-id": "t-1"},
        )
    response = boto3_client.get_object(Bucket=bucket, Key="app/dir/obj.json")
    assert response["Body"].read() == data
    assert response["ContentType"] == "application/json"
    assert response["Metadata"] == {"owner": "alice", "trace-id": "t-1"}


async def test_boto3_writes_asyncstore_reads(
    s3_module: S3Module, boto3_client: Any, bucket: str
) -> None:
    data = pattern(300_000, seed=22)
    boto3_client.put_object(
        Bucket=bucket,
        Key="from/boto3",
        Body=data,
        ContentType="image/png",
        Metadata={"camera": "x100"},
    )
    async with await s3_module.get_read_stream("from/boto3") as stream:
        assert await stream.read() == data
        assert stream.info.content_type == "image/png"
        assert dict(stream.info.metadata) == {"camera": "x100"}
    info = await s3_module.stat("from/boto3")
    assert info.size == len(data)
    assert info.content_type == "image/png"
    assert dict(info.metadata) == {"camera": "x100"}
    assert info.etag == boto3_client.head_object(Bucket=bucket, Key="from/boto3")["ETag"]
    assert [i.handle async for i in s3_module.list("from/")] == ["from/boto3"]


async def test_list_skips_keys_asyncstore_cannot_address(
    s3_module: S3Module, boto3_client: Any, bucket: str
) -> None:
    for key in ("dir/", "a//b", "ok/one", "ok/two"):
        boto3_client.put_object(Bucket=bucket, Key=key, Body=b"x")
    # What the server made of the keys: SeaweedFS stores "a//b" as "a/b", a valid key.
    stored = [item["Key"] for item in boto3_client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert "dir/" in stored and "ok/one" in stored
    addressable = [key for key in stored if key in ("a/b", "ok/one", "ok/two")]
    assert [info.handle async for info in s3_module.list()] == addressable


async def test_prefix_is_stripped_from_handles(
    module_options: dict[str, Any], boto3_client: Any, bucket: str
) -> None:
    boto3_client.put_object(Bucket=bucket, Key="tenant-a/x", Body=b"a")
    boto3_client.put_object(Bucket=bucket, Key="tenant-b/x", Body=b"b")
    boto3_client.put_object(Bucket=bucket, Key="tenant-a-x", Body=b"c")
    async with S3Module(prefix="tenant-a", **module_options) as store:
        assert [(i.handle, i.size) async for i in store.list()] == [("x", 1)]
        assert (await store.stat("x")).size == 1
        await store.delete("x")
    assert "Contents" not in boto3_client.list_objects_v2(Bucket=bucket, Prefix="tenant-a/")


async def test_empty_and_encoded_word_metadata_values_survive_every_engine(
    s3_module: S3Module, boto3_client: Any, bucket: str
) -> None:
    # SeaweedFS drops an empty x-amz-meta-* value: the store sends it as an RFC 2047 word.
    metadata = {"empty": "", "word": "=?UTF-8?B??=", "plain": "v"}
    await s3_module.put(b"m", key="meta", metadata=metadata)
    assert dict((await s3_module.stat("meta")).metadata) == metadata
    stored = boto3_client.head_object(Bucket=bucket, Key="meta")["Metadata"]
    assert stored == {"empty": "=?UTF-8?B??=", "word": "=?UTF-8?B?PT9VVEYtOD9CPz89?=", "plain": "v"}
    # Another tool's encoded words decode the same way; anything else reads as stored.
    boto3_client.put_object(
        Bucket=bucket,
        Key="other",
        Body=b"o",
        Metadata={"word": "=?utf-8?b?aGVsbG8=?=", "odd": "=?UTF-8?B?not base64?="},
    )
    assert dict((await s3_module.stat("other")).metadata) == {
        "word": "hello",
        "odd": "=?UTF-8?B?not base64?=",
    }
