"""Conformance checks for reading: streams, ranges, seek/tell, readinto, iteration."""

from __future__ import annotations

import os

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from asyncstore.errors import InvalidRangeError
from asyncstore.module import StorageModule
from asyncstore.streams import ReadStream
from asyncstore.testing._base import MiB, SuiteBase

DATA = bytes(range(256)) * 40  # 10,240 bytes, every byte position distinguishable mod 256


class ReadTests(SuiteBase):
    """Checks of `get_read_stream` and the `ReadStream` it returns."""

    async def _stored(self, module: StorageModule, data: bytes = DATA) -> str:
        return await self.put(module, data, "read/object.bin")

    async def test_stream_is_a_read_stream(self, module: StorageModule) -> None:
        handle = await self._stored(module)
        async with await module.get_read_stream(handle) as stream:
            assert isinstance(stream, ReadStream)
            assert stream.size == len(DATA)
            assert stream.tell() == 0

    async def test_read_everything(self, module: StorageModule) -> None:
        handle = await self._stored(module)
        assert await self.read_all(module, handle) == DATA

    async def test_read_in_sized_pieces(self, module: StorageModule) -> None:
        handle = await self._stored(module)
        pieces = []
        async with await module.get_read_stream(handle) as stream:
            while piece := await stream.read(1000):
                assert len(piece) <= 1000
                pieces.append(piece)
            assert stream.tell() == len(DATA)
        assert b"".join(pieces) == DATA

    async def test_read_returns_empty_at_the_end(self, module: StorageModule) -> None:
        handle = await self._stored(module)
        async with await module.get_read_stream(handle) as stream:
            await stream.read()
            assert await stream.read() == b""
            assert await stream.read(10) == b""

    async def test_read_zero_bytes(self, module: StorageModule) -> None:
        handle = await self._stored(module)
        async with await module.get_read_stream(handle) as stream:
            assert await stream.read(0) == b""
            assert stream.tell() == 0

    async def test_range_start_and_end(self, module: StorageModule) -> None:
        self.require(module, "range_read")
        handle = await self._stored(module)
        assert await self.read_all(module, handle, start=100, end=1100) == DATA[100:1100]

    async def test_range_start_only(self, module: StorageModule) -> None:
        self.require(module, "range_read")
        handle = await self._stored(module)
        assert await self.read_all(module, handle, start=9000) == DATA[9000:]

    async def test_range_end_only(self, module: StorageModule) -> None:
        self.require(module, "range_read")
        handle = await self._stored(module)
        assert await self.read_all(module, handle, end=10) == DATA[:10]

    async def test_range_is_half_open(self, module: StorageModule) -> None:
        self.require(module, "range_read")
        handle = await self._stored(module)
        async with await module.get_read_stream(handle, start=5, end=6) as stream:
            assert stream.size == 1
            assert await stream.read() == DATA[5:6]

    async def test_empty_range(self, module: StorageModule) -> None:
        self.require(module, "range_read")
        handle = await self._stored(module)
        async with await module.get_read_stream(handle, start=50, end=50) as stream:
            assert stream.size == 0
            assert await stream.read() == b""

    async def test_range_end_past_the_end_is_clamped(self, module: StorageModule) -> None:
        self.require(module, "range_read")
        handle = await self._stored(module)
        async with await module.get_read_stream(handle, start=10_000, end=99_999) as stream:
            assert stream.size == len(DATA) - 10_000
            assert await stream.read() == DATA[10_000:]

    async def test_range_starting_past_the_end_is_empty(self, module: StorageModule) -> None:
        self.require(module, "range_read")
        handle = await self._stored(module)
        async with await module.get_read_stream(handle, start=len(DATA) + 5) as stream:
            assert stream.size == 0
            assert await stream.read() == b""

    @pytest.mark.parametrize(("start", "end"), [(-1, None), (10, 5), (-5, -1)])
    async def test_invalid_range_raises(
        self, module: StorageModule, start: int, end: int | None
    ) -> None:
        handle = await self._stored(module)
        with pytest.raises(InvalidRangeError):
            await module.get_read_stream(handle, start=start, end=end)

    async def test_range_of_a_large_object(self, module: StorageModule) -> None:
        self.require(module, "range_read")
        data = self.pattern(self.large_object_size, seed=7)
        handle = await self.put(module, data, "read/large")
        start, end = 3 * MiB - 17, 4 * MiB + 33
        assert await self.read_all(module, handle, start=start, end=end) == data[start:end]

    async def test_seek_and_tell(self, module: StorageModule) -> None:
        self.require(module, "seek")
        handle = await self._stored(module)
        async with await module.get_read_stream(handle) as stream:
            assert await stream.seek(5000) == 5000
            assert stream.tell() == 5000
            assert await stream.read(10) == DATA[5000:5010]
            assert stream.tell() == 5010
            assert await stream.seek(20) == 20
            assert await stream.read(5) == DATA[20:25]

    async def test_seek_whence(self, module: StorageModule) -> None:
        self.require(module, "seek")
        handle = await self._stored(module)
        async with await module.get_read_stream(handle) as stream:
            await stream.seek(100)
            assert await stream.seek(50, os.SEEK_CUR) == 150
            assert await stream.read(3) == DATA[150:153]
            assert await stream.seek(-10, os.SEEK_END) == len(DATA) - 10
            assert await stream.read() == DATA[-10:]

    async def test_seek_to_the_end_reads_nothing(self, module: StorageModule) -> None:
        self.require(module, "seek")
        handle = await self._stored(module)
        async with await module.get_read_stream(handle) as stream:
            assert await stream.seek(0, os.SEEK_END) == len(DATA)
            assert await stream.read() == b""

    @pytest.mark.parametrize(("offset", "whence"), [(-1, 0), (10_241, 0), (1, 2), (-10_241, 2)])
    async def test_seek_outside_raises_value_error(
        self, module: StorageModule, offset: int, whence: int
    ) -> None:
        self.require(module, "seek")
        handle = await self._stored(module)
        async with await module.get_read_stream(handle) as stream:
            with pytest.raises(ValueError):
                await stream.seek(offset, whence)

    async def test_seek_is_relative_to_the_range(self, module: StorageModule) -> None:
        self.require(module, "seek")
        self.require(module, "range_read")
        handle = await self._stored(module)
        async with await module.get_read_stream(handle, start=1000, end=2000) as stream:
            await stream.seek(10)
            assert await stream.read(5) == DATA[1010:1015]
            with pytest.raises(ValueError):
                await stream.seek(1001)
            await stream.seek(-1, os.SEEK_END)
            assert await stream.read() == DATA[1999:2000]

    async def test_seek_backwards_in_a_large_object(self, module: StorageModule) -> None:
        self.require(module, "seek")
        data = self.pattern(self.large_object_size, seed=8)
        handle = await self.put(module, data, "read/seek-large")
        async with await module.get_read_stream(handle) as stream:
            await stream.seek(4 * MiB)
            assert await stream.read(100) == data[4 * MiB : 4 * MiB + 100]
            await stream.seek(MiB)
            assert await stream.read(100) == data[MiB : MiB + 100]

    async def test_readinto(self, module: StorageModule) -> None:
        handle = await self._stored(module)
        buffer = bytearray(4000)
        received = bytearray()
        async with await module.get_read_stream(handle) as stream:
            while count := await stream.readinto(buffer):
                received += buffer[:count]
            assert await stream.readinto(buffer) == 0
        assert bytes(received) == DATA

    async def test_readinto_after_seek(self, module: StorageModule) -> None:
        self.require(module, "seek")
        handle = await self._stored(module)
        buffer = memoryview(bytearray(16))
        async with await module.get_read_stream(handle) as stream:
            await stream.seek(300)
            count = await stream.readinto(buffer)
            assert 0 < count <= 16
            assert bytes(buffer[:count]) == DATA[300 : 300 + count]

    async def test_async_iteration(self, module: StorageModule) -> None:
        data = self.pattern(3 * MiB + 11, seed=9)
        handle = await self.put(module, data, "read/iterate")
        received = bytearray()
        async with await module.get_read_stream(handle) as stream:
            async for chunk in stream:
                assert chunk
                received += chunk
        assert bytes(received) == data

    async def test_anyio_buffered_wrapper(self, module: StorageModule) -> None:
        handle = await self.put(module, b"line one\nline two\nrest", "read/lines")
        async with await module.get_read_stream(handle) as stream:
            buffered = BufferedByteReceiveStream(stream)
            assert await buffered.receive_until(b"\n", 100) == b"line one"
            assert await buffered.receive_exactly(4) == b"line"
            with pytest.raises(anyio.IncompleteRead):
                await buffered.receive_exactly(100)

    async def test_receive_raises_end_of_stream(self, module: StorageModule) -> None:
        handle = await self.put(module, b"abc", "read/receive")
        async with await module.get_read_stream(handle) as stream:
            assert await stream.receive() == b"abc"
            with pytest.raises(anyio.EndOfStream):
                await stream.receive()

    async def test_stream_info(self, module: StorageModule) -> None:
        handle = await self.put(
            module, DATA, "read/info", metadata={"k": "v"}, content_type="application/x-test"
        )
        async with await module.get_read_stream(handle, start=1, end=3) as stream:
            assert stream.info.handle == handle
            assert stream.info.size == len(DATA)
            assert stream.size == 2
            if module.capabilities().get("metadata"):
                assert stream.info.content_type == "application/x-test"
                assert dict(stream.info.metadata) == {"k": "v"}

    async def test_closed_stream_refuses_reads(self, module: StorageModule) -> None:
        handle = await self._stored(module)
        stream = await module.get_read_stream(handle)
        await stream.aclose()
        await stream.aclose()  # closing twice is harmless
        with pytest.raises(anyio.ClosedResourceError):
            await stream.read(1)

    async def test_many_streams_interleaved(self, module: StorageModule) -> None:
        handles = [
            await self.put(module, self.pattern(5000, i), f"read/many/{i}") for i in range(8)
        ]
        streams = [await module.get_read_stream(h) for h in handles]
        try:
            parts: list[list[bytes]] = [[] for _ in streams]
            for _ in range(6):
                for index, stream in enumerate(streams):
                    parts[index].append(await stream.read(1000))
        finally:
            for stream in streams:
                await stream.aclose()
        for index in range(8):
            assert b"".join(parts[index]) == self.pattern(5000, index)
