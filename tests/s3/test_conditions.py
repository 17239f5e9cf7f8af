"""Conditional writes on S3 beyond the conformance suite: large objects, copies, server facts.

The conformance suite checks the conditions on both servers; these check what it does not
reach: a compare-and-swap of an object sent in parts (decided by CompleteMultipartUpload on
engines that decide it, refused where the engine cannot), conditional server-side copies of
objects copied in parts, and the etag each write returns.
"""

from __future__ import annotations

from typing import Any

import pytest

from asyncstore.errors import AlreadyExistsError, PreconditionFailedError, UnsupportedError
from asyncstore_s3 import S3Module

from ._helpers import MiB, count_requests, pattern, uploads_in_progress

pytestmark = pytest.mark.anyio

PART = 5 * MiB


async def test_compare_and_swap_of_an_object_in_parts(
    module_options: dict[str, Any], boto3_client: Any, bucket: str
) -> None:
    async with S3Module(part_size=PART, **module_options) as store:
        first = pattern(2 * PART + 1, seed=1)
        handle = await store.put(first, key="big", overwrite=False)
        assert handle.etag == (await store.stat("big")).etag
        second = pattern(2 * PART + 7, seed=2)
        if module_options.get("engine") == "moto":
            # moto ignores If-Match on CompleteMultipartUpload: refused, never unconditional.
            with pytest.raises(UnsupportedError, match="multipart"):
                await store.put(second, key="big", if_match=handle.etag)
            assert await _read(store, "big") == first
            return
        swapped = await store.put(second, key="big", if_match=handle.etag)
        with pytest.raises(PreconditionFailedError):
            await store.put(pattern(2 * PART, seed=3), key="big", if_match=handle.etag)
        assert await _read(store, "big") == second
        assert swapped.etag == (await store.stat("big")).etag
        with pytest.raises(AlreadyExistsError):
            await store.put(pattern(2 * PART, seed=4), key="big", overwrite=False)
        assert uploads_in_progress(boto3_client, bucket) == []


async def test_conditional_copies_in_parts(module_options: dict[str, Any]) -> None:
    async with S3Module(part_size=PART, **module_options) as store:
        store._copy_limit = PART  # stands in for S3's 5 GiB CopyObject limit
        data = pattern(2 * PART + 3, seed=5)
        await store.put(data, key="src")
        await store.copy("src", key="dst", overwrite=False)
        with pytest.raises(AlreadyExistsError):
            await store.copy("src", key="dst", overwrite=False)
        etag = (await store.stat("dst")).etag
        assert etag
        if module_options.get("engine") == "moto":
            # Streamed through a put on moto, and refused as any multipart compare-and-swap.
            with pytest.raises(UnsupportedError, match="multipart"):
                await store.copy("src", key="dst", if_match=etag)
        else:
            with pytest.raises(PreconditionFailedError):
                await store.copy("src", key="dst", if_match=etag + "x")
            copied = await store.copy("src", key="dst", if_match=etag)
            assert copied.etag == (await store.stat("dst")).etag
        assert await _read(store, "dst") == data
        with pytest.raises(AlreadyExistsError):
            await store.copy("src", key="src", overwrite=False)  # onto itself


async def test_a_condition_travels_with_the_publishing_request(s3_module: S3Module) -> None:
    await s3_module.put(b"v1", key="k")
    etag = (await s3_module.stat("k")).etag
    requests = await count_requests(s3_module)
    await s3_module.put(b"v2", key="k", if_match=etag)
    await s3_module.delete("k", if_match=(await s3_module.stat("k")).etag)
    # No read before the write: the server decides the condition with the write itself.
    assert requests == {"PutObject": 1, "HeadObject": 1, "DeleteObject": 1}


async def _read(store: S3Module, key: str) -> bytes:
    async with await store.get_read_stream(key) as stream:
        return await stream.read()
