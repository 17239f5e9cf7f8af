"""The memory module's own behaviour, beyond the conformance suite."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from asyncstore.memory import MemoryModule

pytestmark = pytest.mark.anyio


async def lent_object(module: MemoryModule, key: str) -> object:
    """The object whose bytes a read stream of ``key`` lends (the stored bytes themselves)."""
    async with await module.get_read_stream(key) as stream:
        view = stream._read_view(1)
        assert view is not None
        return view.obj


async def test_a_bytes_source_is_stored_without_a_copy() -> None:
    data = bytes(range(256)) * 4096
    async with MemoryModule() as module:
        await module.put(data, key="k")
        assert await lent_object(module, "k") is data


async def test_a_streamed_source_is_copied_once() -> None:
    pieces = [os.urandom(300_000) for _ in range(8)]
    async with MemoryModule() as module:
        await module.put(iter(pieces), key="big")
        await module.put(iter(pieces[:2]), key="small")
        big, small = await lent_object(module, "big"), await lent_object(module, "small")
        # A large object keeps the buffer it was gathered in; a small one is made exact.
        assert isinstance(big, bytearray) and big == b"".join(pieces)
        assert type(small) is bytes and small == b"".join(pieces[:2])


async def test_a_buffer_source_is_copied_exactly_once() -> None:
    source = bytearray(os.urandom(3 << 20))
    expected = bytes(source)
    async with MemoryModule() as module:
        await module.put(source, key="big")
        await module.put(memoryview(source)[: 1 << 20], key="view")
        source[:] = bytes(len(source))  # the caller reuses its buffer
        stored = await lent_object(module, "big")
        assert stored is not source and stored == expected and len(stored) == len(expected)
        assert await lent_object(module, "view") == expected[: 1 << 20]
        with pytest.raises(TypeError, match="contiguous"):
            await module.put(memoryview(source)[::2], key="strided")
        assert not await module.available("strided")


async def test_mutable_sources_are_copied_as_they_come() -> None:
    buffer = bytearray(b"a" * 1000)
    filled = []

    async def reused() -> AsyncIterator[memoryview]:
        # One buffer refilled for every chunk, as a reader with a fixed buffer does.
        for letter in b"abc":
            buffer[:] = bytes([letter]) * 1000
            filled.append(bytes(buffer))
            yield memoryview(buffer)

    async with MemoryModule() as module:
        await module.put(reused(), key="k")
        buffer[:] = b"z" * 1000
        assert await module.get_size("k") == 3000
        async with await module.get_read_stream("k") as stream:
            assert await stream.read() == b"".join(filled)
        source = bytearray(b"mutable")
        await module.put(source, key="m")
        source[:] = b"changed"
        async with await module.get_read_stream("m") as stream:
            assert await stream.read() == b"mutable"


async def test_etag_is_new_for_every_write_and_kept_by_copy() -> None:
    async with MemoryModule() as module:
        first = (await module.stat(await module.put(b"same", key="a"))).etag
        second = (await module.stat(await module.put(b"same", key="a"))).etag
        assert first and second and first != second
        copied = await module.copy("a", key="b")
        assert (await module.stat(copied)).etag == second


async def test_capacity_is_checked_while_the_source_streams() -> None:
    from asyncstore.errors import StorageFullError

    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        while True:
            sent += 1
            yield b"x" * 1024

    async with MemoryModule(max_bytes=10 * 1024) as module:
        with pytest.raises(StorageFullError):
            await module.put(endless(), key="big")
        assert sent == 11  # refused at the first chunk past the limit, not at the end
        assert not await module.available("big")
        with pytest.raises(StorageFullError):
            await module.put(b"y" * (10 * 1024 + 1), key="big")
        assert (await module.statistics())["capacity"]["used"] == 0
