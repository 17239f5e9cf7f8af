"""Reads: one GET per stream, ranged GETs for ranges and seeks, never the skipped bytes."""

from __future__ import annotations

from typing import Any

import pytest

from asyncstore.errors import NotFoundError, PreconditionFailedError
from asyncstore_s3 import S3Module

from ._helpers import MiB, count_requests, pattern

pytestmark = pytest.mark.anyio

DATA = pattern(3 * MiB + 17, seed=11)


@pytest.fixture
async def stored(s3_module: S3Module) -> S3Module:
    await s3_module.put(DATA, key="obj", metadata={"a": "1"}, content_type="text/plain")
    return s3_module


async def test_whole_object_is_exactly_one_get(stored: S3Module) -> None:
    requests = await count_requests(stored)
    async with await stored.get_read_stream("obj") as stream:
        assert stream.info.size == len(DATA)
        assert stream.info.content_type == "text/plain"
        assert dict(stream.info.metadata) == {"a": "1"}
        assert stream.info.etag
        assert await stream.read() == DATA
    assert dict(requests) == {"GetObject": 1}


async def test_missing_object_raises_on_open_after_one_request(stored: S3Module) -> None:
    requests = await count_requests(stored)
    with pytest.raises(FileNotFoundError):
        await stored.get_read_stream("missing")
    assert dict(requests) == {"GetObject": 1}


async def test_ranged_read_sends_a_range(stored: S3Module) -> None:
    sent: list[str | None] = []
    async with stored._pool.client() as client:
        client.meta.events.register(
            "before-call.s3.GetObject",
            lambda params, **kw: sent.append(params["headers"].get("Range")),
        )
    async with await stored.get_read_stream("obj", start=MiB, end=MiB + 100) as stream:
        assert stream.size == 100
        assert stream.info.size == len(DATA)
        assert await stream.read() == DATA[MiB : MiB + 100]
    assert sent == [f"bytes={MiB}-{MiB + 99}"]


async def test_sequential_reads_reuse_one_body(stored: S3Module) -> None:
    requests = await count_requests(stored)
    async with await stored.get_read_stream("obj") as stream:
        pieces = []
        while piece := await stream.read(100_000):
            pieces.append(piece)
    assert b"".join(pieces) == DATA
    assert dict(requests) == {"GetObject": 1}


async def test_seek_backwards_issues_one_ranged_get(stored: S3Module) -> None:
    requests = await count_requests(stored)
    async with await stored.get_read_stream("obj") as stream:
        got = b""
        while len(got) < 2 * MiB:
            got += await stream.read(2 * MiB - len(got))  # read(n) may return fewer bytes
        assert got == DATA[: 2 * MiB]
        await stream.seek(10)
        assert await stream.read(1000) == DATA[10:1010]
        await stream.seek(-7, 2)
        assert await stream.read() == DATA[-7:]
    assert requests["GetObject"] == 3


async def test_short_forward_seek_reads_through(stored: S3Module) -> None:
    requests = await count_requests(stored)
    async with await stored.get_read_stream("obj") as stream:
        await stream.read(100)
        await stream.seek(50_000, 1)
        assert await stream.read(10) == DATA[50_100:50_110]
    assert requests["GetObject"] == 1


async def test_range_past_the_end_and_empty_range(stored: S3Module) -> None:
    async with await stored.get_read_stream("obj", start=len(DATA) + 5) as stream:
        assert stream.size == 0
        assert stream.info.size == len(DATA)
        assert await stream.read() == b""
    async with await stored.get_read_stream("obj", start=5, end=5) as stream:
        assert await stream.read() == b""


async def test_empty_object(s3_module: S3Module) -> None:
    await s3_module.put(b"", key="empty")
    for kwargs in ({}, {"start": 0, "end": 10}, {"start": 3}):
        async with await s3_module.get_read_stream("empty", **kwargs) as stream:
            assert stream.info.size == 0
            assert await stream.read() == b""


async def test_replaced_object_is_never_mixed(stored: S3Module) -> None:
    # A seek after the object was replaced must not splice the new bytes onto the old ones.
    async with await stored.get_read_stream("obj") as stream:
        await stream.read(10)
        await stored.put(b"new content", key="obj")
        await stream.seek(0)
        with pytest.raises(PreconditionFailedError, match="replaced while it was being read"):
            await stream.read(10)


async def test_streams_left_open_do_not_block_other_work(module_options: dict[str, Any]) -> None:
    async with S3Module(max_pool_connections=2, **module_options) as store:
        await store.put(DATA, key="obj")
        streams = [await store.get_read_stream("obj") for _ in range(2)]
        for stream in streams:
            await stream.read(10)
            await stream.aclose()
        async with await store.get_read_stream("obj") as stream:
            assert await stream.read() == DATA


async def test_a_range_of_an_empty_object_that_is_also_a_prefix(s3_module: S3Module) -> None:
    # SeaweedFS answers such a ranged GET with 404 (a plain empty object gets 416).
    await s3_module.put(b"", key="dir")
    await s3_module.put(b"child", key="dir/child")
    for start, end in ((0, 1), (0, None), (3, 10)):
        async with await s3_module.get_read_stream("dir", start=start, end=end) as stream:
            assert stream.size == 0
            assert await stream.read() == b""
    with pytest.raises(NotFoundError):
        await s3_module.get_read_stream("missing", start=0, end=1)
    with pytest.raises(NotFoundError):
        await s3_module.get_read_stream("dir/missing", start=2)
