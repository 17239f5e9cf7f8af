"""Multipart uploads: part sizes, bounded concurrency, and nothing left behind on failure."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from botocore.exceptions import ClientError

from asyncstore.errors import NotFoundError, StorageError
from asyncstore.testing import SourceFailed, failing_source
from asyncstore_s3 import S3Module

from ._helpers import MiB, count_requests, crc32_b64, pattern, uploads_in_progress

pytestmark = pytest.mark.anyio

PART = 5 * MiB


@pytest.fixture
async def module(module_options: dict[str, Any]) -> AsyncIterator[S3Module]:
    async with S3Module(part_size=PART, upload_concurrency=2, **module_options) as store:
        yield store


async def chunks(data: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for index in range(0, len(data), size):
        await anyio.lowlevel.checkpoint()
        yield data[index : index + size]


async def test_unknown_length_source_uses_multipart(
    module: S3Module, boto3_client: Any, bucket: str
) -> None:
    data = pattern(2 * PART + 12345, seed=1)
    requests = await count_requests(module)
    await module.put(chunks(data), key="big", metadata={"k": "v"}, content_type="image/png")
    assert requests["CreateMultipartUpload"] == 1
    assert requests["UploadPart"] == 3
    assert requests["CompleteMultipartUpload"] == 1
    assert requests["PutObject"] == 0
    head = boto3_client.head_object(Bucket=bucket, Key="big")
    assert head["ETag"].endswith('-3"')
    assert head["ContentType"] == "image/png"
    assert head["Metadata"] == {"k": "v"}
    async with await module.get_read_stream("big") as stream:
        assert await stream.read() == data
    assert uploads_in_progress(boto3_client, bucket) == []


async def test_an_object_sent_in_parts_gets_a_crc32_of_the_whole(
    module: S3Module, boto3_client: Any, bucket: str
) -> None:
    # Not S3's default for parts, a checksum of the parts' checksums, which no reader checks:
    # boto3 and botocore check this one on every whole read, and so do we.
    data = pattern(2 * PART + 7, seed=11)
    await module.put(chunks(data), key="obj")
    head = boto3_client.head_object(Bucket=bucket, Key="obj", ChecksumMode="ENABLED")
    assert head["ETag"].endswith('-3"')
    assert head["ChecksumType"] == "FULL_OBJECT"
    assert head["ChecksumCRC32"] == crc32_b64(data)


async def test_known_length_source_uses_multipart(module: S3Module) -> None:
    data = pattern(PART + 1, seed=2)
    requests = await count_requests(module)
    await module.put(data, key="known")
    assert requests["UploadPart"] == 2
    async with await module.get_read_stream("known") as stream:
        assert await stream.read() == data


async def test_source_of_exactly_one_part_is_one_put(module: S3Module) -> None:
    data = pattern(PART, seed=3)
    requests = await count_requests(module)
    await module.put(chunks(data, MiB), key="one-part")
    assert dict(requests) == {"PutObject": 1}
    async with await module.get_read_stream("one-part") as stream:
        assert await stream.read() == data


async def test_small_object_is_one_put(module: S3Module) -> None:
    requests = await count_requests(module)
    await module.put(b"small", key="small")
    assert dict(requests) == {"PutObject": 1}


async def test_source_failing_in_part_three_leaves_nothing(
    module: S3Module, boto3_client: Any, bucket: str
) -> None:
    data = pattern(3 * PART, seed=4)
    requests = await count_requests(module)
    with pytest.raises(SourceFailed):
        await module.put(failing_source(data, 2 * PART + MiB, MiB), key="fails")
    assert requests["CreateMultipartUpload"] == 1
    assert requests["AbortMultipartUpload"] == 1
    assert requests["CompleteMultipartUpload"] == 0
    assert not await module.available("fails")
    with pytest.raises(NotFoundError):
        await module.get_read_stream("fails")
    assert uploads_in_progress(boto3_client, bucket) == []


async def test_failing_source_keeps_the_old_object(module: S3Module, boto3_client: Any) -> None:
    await module.put(b"old", key="keep")
    with pytest.raises(SourceFailed):
        await module.put(failing_source(pattern(3 * PART), 2 * PART + 1, MiB), key="keep")
    async with await module.get_read_stream("keep") as stream:
        assert await stream.read() == b"old"


async def test_cancelled_upload_is_aborted(
    module: S3Module, boto3_client: Any, bucket: str
) -> None:
    data = pattern(2 * PART, seed=5)
    sent_two_parts = anyio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        async for chunk in chunks(data, MiB):
            yield chunk
        sent_two_parts.set()
        await anyio.sleep_forever()
        yield b""  # pragma: no cover

    async with anyio.create_task_group() as group:
        group.start_soon(lambda: module.put(stalls(), key="cancelled"))
        await sent_two_parts.wait()
        await anyio.sleep(0.5)  # let the parts reach the server
        group.cancel_scope.cancel()
    assert not await module.available("cancelled")
    assert uploads_in_progress(boto3_client, bucket) == []


async def test_server_failure_aborts_the_upload(
    module_options: dict[str, Any], boto3_client: Any, bucket: str
) -> None:
    data = pattern(2 * PART + 1, seed=6)
    module = S3Module(part_size=PART, max_attempts=1, **module_options)
    requests = await count_requests(module)

    def corrupt(params: Any, **kwargs: Any) -> None:
        # The server refuses part 2 (an upload id it does not know).
        if params.get("PartNumber") == 2:
            params["UploadId"] = "unknown-upload"

    async with module._pool.client() as client:
        client.meta.events.register("provide-client-params.s3.UploadPart", corrupt)
    async with module:
        # moto answers 500 (AWS: 404 NoSuchUpload); either way the put fails and is aborted.
        with pytest.raises(StorageError) as caught:
            await module.put(data, key="refused")
        assert isinstance(caught.value.__cause__, ClientError)
        assert requests["AbortMultipartUpload"] == 1
        assert not await module.available("refused")
    assert uploads_in_progress(boto3_client, bucket) == []


async def test_memory_is_bounded_by_concurrency(module: S3Module) -> None:
    # The source is never read more than (concurrency) parts ahead of the server.
    data = pattern(5 * PART, seed=7)
    in_flight = 0
    peak = 0
    async with module._pool.client() as client:

        async def before(**kwargs: Any) -> None:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)

        async def after(**kwargs: Any) -> None:
            nonlocal in_flight
            in_flight -= 1

        client.meta.events.register("before-call.s3.UploadPart", before)
        client.meta.events.register("after-call.s3.UploadPart", after)
    await module.put(chunks(data, MiB), key="bounded")
    assert 1 <= peak <= 2
    async with await module.get_read_stream("bounded") as stream:
        assert await stream.read() == data


@pytest.mark.parametrize("checksum", ["md5", "none"])
async def test_other_checksum_modes(
    module_options: dict[str, Any], checksum: str, boto3_client: Any, bucket: str
) -> None:
    async with S3Module(part_size=PART, checksum=checksum, **module_options) as store:
        small = pattern(1000, seed=8)
        large = pattern(PART + 10, seed=9)
        await store.put(small, key="small")
        await store.put(chunks(large), key="large")
        for key, data in (("small", small), ("large", large)):
            assert boto3_client.get_object(Bucket=bucket, Key=key)["Body"].read() == data


async def test_abort_stale_uploads(module: S3Module, boto3_client: Any, bucket: str) -> None:
    boto3_client.create_multipart_upload(Bucket=bucket, Key="crashed/object")
    assert await module.abort_stale_uploads(older_than=100 * 365 * 86400) == []
    found = await module.abort_stale_uploads(older_than=0, dry_run=True)
    assert [upload.key for upload in found] == ["crashed/object"]
    assert len(uploads_in_progress(boto3_client, bucket)) == 1
    aborted = await module.abort_stale_uploads(older_than=0)
    assert [upload.key for upload in aborted] == ["crashed/object"]
    assert uploads_in_progress(boto3_client, bucket) == []
    boto3_client.create_multipart_upload(Bucket=bucket, Key="crashed/again")
    # moto reports every upload as initiated on 2010-11-10, so only a larger age spares it.
    assert await module.cleanup(older_than=100 * 365 * 86400) == {"uploads": 0}
    assert await module.cleanup(older_than=0) == {"uploads": 1}
    assert uploads_in_progress(boto3_client, bucket) == []


async def test_part_body_is_a_rewindable_file_and_an_async_iterable() -> None:
    from asyncstore_s3._upload import PartBody

    data = pattern(3 * MiB + 5, seed=12)
    body = PartBody(data)
    assert len(body) == len(data)
    assert bytes(body.read(10)) == data[:10]
    assert body.tell() == 10
    assert bytes(body.read()) == data[10:]
    assert body.seek(0) == 0  # botocore rewinds before a retry
    assert b"".join([bytes(chunk) async for chunk in body]) == data
    assert body.seek(-5, 2) == len(data) - 5


async def test_readonly_views_are_sent_without_copies_and_exactly(module: S3Module) -> None:
    data = pattern(PART + 300, seed=13)
    small = memoryview(data)[10:110]
    large = memoryview(data)[100:]
    await module.put(small, key="small-view")
    await module.put(large, key="large-view")
    for key, expected in (("small-view", data[10:110]), ("large-view", data[100:])):
        async with await module.get_read_stream(key) as stream:
            assert await stream.read() == expected


async def test_only_bodies_above_two_mib_wait_for_100_continue(module: S3Module) -> None:
    expects: dict[tuple[str, int], str | None] = {}

    def record(request: Any, **kwargs: Any) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        expects[(request.method, length)] = request.headers.get("Expect")

    async with module._pool.client() as client:
        client.meta.events.register("before-send.s3", record)
    data = pattern(PART + MiB, seed=14)
    await module.put(data[: 2 * MiB], key="two-mib")  # one PUT, at the threshold
    await module.put(data, key="parts")  # a 5 MiB part and a 1 MiB part
    await module.put(chunks(data[:MiB]), key="streamed")  # one PUT of unknown length at first
    assert expects[("PUT", 2 * MiB)] is None
    assert expects[("PUT", PART)] in ("100-continue", b"100-continue")
    assert expects[("PUT", MiB)] is None
    async with await module.get_read_stream("parts") as stream:
        assert await stream.read() == data
