"""Stacked middleware pass the conformance suite and report effective capabilities."""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path

import pytest

import asyncstore_fs as fs
from asyncstore import open_store
from asyncstore.errors import IntegrityError
from asyncstore.memory import MemoryModule
from asyncstore.middleware._base import RangeReader
from asyncstore.middleware.compress import DEFAULT_CHUNK_SIZE, CompressionModule
from asyncstore.middleware.encrypt import CHUNK_SIZE, HEADER_SIZE, EncryptionModule
from asyncstore.streams import ReadStream
from asyncstore.testing import StorageModuleTests

from .helpers import CountingModule, new_key, read

RECORD = CHUNK_SIZE + 16


class TestCompressEncryptMemory(StorageModuleTests):
    """compress -> encrypt -> memory."""

    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    async def module(self):
        inner = EncryptionModule(inner=MemoryModule(), key=new_key())
        async with CompressionModule(inner=inner, chunk_size=16 * 1024) as module:
            yield module


class TestEncryptCompressMemory(StorageModuleTests):
    """encrypt -> compress -> memory (pointless for ratio, but any order must work)."""

    @pytest.fixture
    async def module(self):
        inner = CompressionModule(inner=MemoryModule(), chunk_size=4096)
        async with EncryptionModule(inner=inner, key=new_key()) as module:
            yield module


class TestCompressEncryptFileSystem(StorageModuleTests):
    """compress -> encrypt -> fs."""

    list_page_objects = 0  # pagination is checked over memory, and by the fs suite

    @pytest.fixture
    async def module(self, tmp_path: Path):
        inner = EncryptionModule(
            inner=fs.FileSystemModule(root=str(tmp_path / "store"), fsync=False), key=new_key()
        )
        async with CompressionModule(inner=inner) as module:
            yield module


@pytest.mark.anyio
async def test_effective_capabilities_of_a_stack() -> None:
    stack = CompressionModule(inner=EncryptionModule(inner=MemoryModule(), key=new_key()))
    caps = stack.capabilities()
    assert caps["cdmi_encryption"] == ["AES_GCM_256"]  # the caller's bytes end up encrypted
    assert caps["named_keys"] is True and caps["list"] is True
    assert caps["server_side_copy"] is False and caps["presign"] is False
    reverse = EncryptionModule(inner=CompressionModule(inner=MemoryModule()), key=new_key())
    assert reverse.capabilities()["cdmi_encryption"] == ["AES_GCM_256"]
    assert CompressionModule(inner=MemoryModule()).capabilities()["cdmi_encryption"] == []
    stats = await stack.statistics()
    assert set(stats) >= {"capacity", "inner", "compress"}
    assert "encrypt" in stats["inner"]
    await stack.aclose()


def stored_chunks(start: int, end: int) -> set[int]:
    """The encrypted chunks that stored bytes ``[start, end)`` fall in (none in the header)."""
    start, end = max(start, HEADER_SIZE) - HEADER_SIZE, end - HEADER_SIZE
    return set(range(start // RECORD, (end - 1) // RECORD + 1)) if end > start else set()


def plain_chunks(start: int, end: int) -> set[int]:
    """The encrypted chunks holding bytes ``[start, end)`` of the compressed object."""
    return set(range(start // CHUNK_SIZE, (end - 1) // CHUNK_SIZE + 1)) if end > start else set()


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["text", "random"])
async def test_a_small_ranged_read_of_a_stacked_object_touches_at_most_two_chunks_of_frames(
    kind: str,
) -> None:
    """compress -> encrypt with the default sizes: frames of at most 32 KiB (stored raw when
    incompressible) in 64 KiB encrypted chunks, so any read of up to 32 KiB needs frame data
    from at most two encrypted chunks, wherever it starts; besides those it reads only the
    chunks holding the compress trailer and the index entries it needs."""
    memory = CountingModule()
    stack = CompressionModule(inner=EncryptionModule(inner=memory, key=new_key()))
    text = b"".join(b"%08d GET /items/%d 200\n" % (i, i * 7919 % 10007) for i in range(40_000))
    data = text * 6 if kind == "text" else os.urandom(len(text) * 6)  # about 6 MiB
    await stack.put(data, key="big")
    plain = await read(stack.inner, "big")  # the compressed object, as stored through encrypt
    _, frame, size, count, index_offset = struct.unpack(">4sIQQQ", plain[-32:])
    assert (frame, size) == (DEFAULT_CHUNK_SIZE, len(data))
    ends = [0, *struct.unpack(f">{count}Q", plain[index_offset : index_offset + 8 * count])]
    rng = random.Random(7)
    starts = [len(data) // 2, 0, len(data) - 4096]
    starts += [rng.randrange(len(data) - 4096) for _ in range(40)]
    starts += [k * frame - rng.randrange(1, 4096) for k in rng.sample(range(1, count), 40)]
    starts += [k * frame - 2048 for k in range(1, count, 3)]  # frames either side of 1/3 of all
    most = 0
    for start in starts:
        length = 4096 if start % 5 else DEFAULT_CHUNK_SIZE  # some reads of a whole frame's size
        end = min(start + length, len(data))
        memory.log.clear()
        assert await read(stack, "big", start=start, end=end) == data[start:end]
        touched = set().union(*(stored_chunks(o, o + n) for o, n in memory.log))
        first, last = start // frame, (end - 1) // frame
        frames = plain_chunks(ends[first], ends[last + 1])
        assert len(frames) <= 2, (start, end, sorted(frames))
        trailer = plain_chunks(len(plain) - 32, len(plain))
        entries = plain_chunks(index_offset + 8 * max(first - 1, 0), index_offset + 8 * (last + 1))
        assert touched == frames | trailer | entries, (start, end)
        most = max(most, len(frames))
    assert most == 2  # the bound is reached, so it is the tightest one
    await stack.aclose()


@pytest.mark.anyio
async def test_stack_from_a_config_file(tmp_path: Path) -> None:
    config = tmp_path / "asyncstore.toml"
    config.write_text(
        """
[stores.blobs]
module = "memory"

[stores.sealed]
module = "encrypt"
inner = "blobs"
key = "${KEY}"

[stores.app]
module = "compress"
inner = "sealed"
"""
    )
    async with open_store("app", config=config, environ={"KEY": new_key()}) as store:
        assert isinstance(store, CompressionModule)
        assert isinstance(store.inner, EncryptionModule)
        assert isinstance(store.inner.inner, MemoryModule)
        await store.put(b"hello " * 1000, key="greeting", metadata={"lang": "en"})
        info = await store.stat("greeting")
        assert (info.size, dict(info.metadata)) == (6000, {"lang": "en"})
        assert store.capabilities()["cdmi_encryption"] == ["AES_GCM_256"]


class ReadOnlyStreams(MemoryModule):
    """A memory module whose streams offer only `_read_at` (no `_readinto_at`), as s3's do."""

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None
    ) -> ReadStream:
        stream = await super().get_read_stream(handle, start=start, end=end)
        return _ReadOnly(stream)


class _ReadOnly(ReadStream):
    def __init__(self, stream: ReadStream) -> None:
        super().__init__(stream.info, start=stream._offset, end=stream._offset + stream.size)
        self._stream = stream

    async def _read_at(self, offset: int, max_bytes: int) -> bytes:
        return await self._stream._read_at(offset, min(max_bytes, 1000))  # short reads, too

    async def _close(self) -> None:
        await self._stream.aclose()


class CopyingStreams(MemoryModule):
    """A memory module whose streams copy into the reader's buffer but lend nothing, as fs's."""

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None
    ) -> ReadStream:
        stream = await super().get_read_stream(handle, start=start, end=end)
        return _Copying(stream)


class _Copying(_ReadOnly):
    async def _readinto_at(self, offset: int, buffer: memoryview) -> int:
        return await self._stream._readinto_at(offset, buffer[:1500])  # short reads, too


@pytest.mark.anyio
async def test_range_reader_borrows_memory_bytes_without_a_copy() -> None:
    memory = MemoryModule()
    data = os.urandom(10_000)
    await memory.put(data, key="obj")
    async with await memory.get_read_stream("obj") as stream:
        reader = RangeReader(stream, store="test", handle="obj")
        view = await reader.read(1000, 4000)
        assert view.obj is data and bytes(view) == data[1000:5000]
        with pytest.raises(IntegrityError, match="ends 10 bytes early"):
            await reader.read(6000, 4010)


@pytest.mark.anyio
@pytest.mark.parametrize("inner_class", [ReadOnlyStreams, CopyingStreams])
async def test_layers_over_streams_that_lend_nothing(inner_class: type[MemoryModule]) -> None:
    inner = inner_class()
    stack = CompressionModule(inner=EncryptionModule(inner=inner, key=new_key()))
    data = os.urandom(100_000) + b"log line\n" * 50_000
    await stack.put(data, key="obj")
    assert await read(stack, "obj") == data
    for start in (0, 70_000, 300_000, len(data) - 100):
        assert (
            await read(stack, "obj", start=start, end=start + 40_000)
            == data[start : start + 40_000]
        )
    reverse = EncryptionModule(inner=CompressionModule(inner=inner), key=new_key())
    await reverse.put(data, key="rev")
    assert await read(reverse, "rev") == data
    assert await read(reverse, "rev", start=65_000, end=140_000) == data[65_000:140_000]
    await stack.aclose()
