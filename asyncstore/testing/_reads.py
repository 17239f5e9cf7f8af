"""Conformance checks for reading: streams, ranges, seek/tell, readinto, iteration."""

from __future__ import annotations

import os

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from asyncstore.errors import InvalidRangeError
from asyncstore.module import StorageModule
from asyncstore.streams import ReadStream
from asyncstore.testing._base import MiB, SuiteBase, expect_bytes, expect_error, show

DATA = bytes(range(256)) * 40  # 10,240 bytes, every byte position distinguishable mod 256


class ReadTests(SuiteBase):
    """Checks of `get_read_stream` and the `ReadStream` it returns."""

    async def _stored(self, module: StorageModule, data: bytes = DATA) -> str:
        return await self.put(module, data, "read/object.bin")

    async def test_stream_is_a_read_stream(self, module: StorageModule) -> None:
        handle = await self._stored(module)
        async with await module.get_read_stream(handle) as stream:
            assert isinstance(stream, ReadStream), (
                f"get_read_stream(): expected an asyncstore.ReadStream, got {show(stream)}"
            )
            assert stream.size == len(DATA), (
                f"stream.size of a {len(DATA)}-byte object: expected {len(DATA)}, "
                f"got {stream.size!r}"
            )
            assert stream.tell() == 0, (
                f"stream.tell() of a new stream: expected 0, got {stream.tell()!r}"
            )

    async def test_read_everything(self, module: StorageModule) -> None:
        handle = await self._stored(module)
        expect_bytes(await self.read_all(module, handle), DATA, "stream.read() of a whole object")

    async def test_read_in_sized_pieces(self, module: StorageModule) -> None:
        handle = await self._stored(module)
        pieces = []
        async with await module.get_read_stream(handle) as stream:
            while piece := await stream.read(1000):
                assert len(piece) <= 1000, (
                    f"stream.read(1000): expected at most 1000 bytes, got {len(piece)}"
                )
                pieces.append(piece)
            assert stream.tell() == len(DATA), (
                f"stream.tell() after reading everything: expected {len(DATA)}, "
                f"got {stream.tell()!r}"
            )
        expect_bytes(b"".join(pieces), DATA, "reading a whole object with read(1000)")

    async def test_read_returns_empty_at_the_end(self, module: StorageModule) -> None:
        handle = await self._stored(module)
        async with await module.get_read_stream(handle) as stream:
            await stream.read()
            expect_bytes(await stream.read(), b"", "stream.read() at the end")
            expect_bytes(await stream.read(10), b"", "stream.read(10) at the end")

    async def test_read_zero_bytes(self, module: StorageModule) -> None:
        handle = await self._stored(module)
        async with await module.get_read_stream(handle) as stream:
            expect_bytes(await stream.read(0), b"", "stream.read(0)")
            assert stream.tell() == 0, (
                f"stream.tell() after read(0): expected 0, got {stream.tell()!r}"
            )

    async def test_range_start_and_end(self, module: StorageModule) -> None:
        self.require(module, "range_read")
        handle = await self._stored(module)
        expect_bytes(
            await self.read_all(module, handle, start=100, end=1100),
            DATA[100:1100],
            "get_read_stream(start=100, end=1100)",
        )

    async def test_range_start_only(self, module: StorageModule) -> None:
        self.require(module, "range_read")
        handle = await self._stored(module)
        expect_bytes(
            await self.read_all(module, handle, start=9000),
            DATA[9000:],
            f"get_read_stream(start=9000) of {len(DATA)} bytes",
        )

    async def test_range_end_only(self, module: StorageModule) -> None:
        self.require(module, "range_read")
        handle = await self._stored(module)
        expect_bytes(
            await self.read_all(module, handle, end=10), DATA[:10], "get_read_stream(end=10)"
        )

    async def test_range_is_half_open(self, module: StorageModule) -> None:
        self.require(module, "range_read")
        handle = await self._stored(module)
        async with await module.get_read_stream(handle, start=5, end=6) as stream:
            assert stream.size == 1, (
                f"stream.size of the half-open range [5, 6): expected 1, got {stream.size!r}"
            )
            expect_bytes(await stream.read(), DATA[5:6], "get_read_stream(start=5, end=6)")

    async def test_empty_range(self, module: StorageModule) -> None:
        self.require(module, "range_read")
        handle = await self._stored(module)
        async with await module.get_read_stream(handle, start=50, end=50) as stream:
            assert stream.size == 0, (
                f"stream.size of the empty range [50, 50): expected 0, got {stream.size!r}"
            )
            expect_bytes(await stream.read(), b"", "get_read_stream(start=50, end=50)")

    async def test_range_end_past_the_end_is_clamped(self, module: StorageModule) -> None:
        self.require(module, "range_read")
        handle = await self._stored(module)
        async with await module.get_read_stream(handle, start=10_000, end=99_999) as stream:
            assert stream.size == len(DATA) - 10_000, (
                f"stream.size of [10000, 99999) in {len(DATA)} bytes: expected the range clamped "
                f"to the end, {len(DATA) - 10_000}, got {stream.size!r}"
            )
            expect_bytes(
                await stream.read(), DATA[10_000:], "get_read_stream(start=10000, end=99999)"
            )

    async def test_range_starting_past_the_end_is_empty(self, module: StorageModule) -> None:
        self.require(module, "range_read")
        handle = await self._stored(module)
        async with await module.get_read_stream(handle, start=len(DATA) + 5) as stream:
            assert stream.size == 0, (
                f"stream.size of a range starting past the end: expected 0, got {stream.size!r}"
            )
            expect_bytes(await stream.read(), b"", "a range starting past the end")

    @pytest.mark.parametrize(("start", "end"), [(-1, None), (10, 5), (-5, -1)])
    async def test_invalid_range_raises(
        self, module: StorageModule, start: int, end: int | None
    ) -> None:
        handle = await self._stored(module)
        with expect_error(InvalidRangeError, f"get_read_stream(start={start}, end={end})"):
            await module.get_read_stream(handle, start=start, end=end)

    async def test_range_of_a_large_object(self, module: StorageModule) -> None:
        self.require(module, "range_read")
        data = self.pattern(self.large_object_size, seed=7)
        handle = await self.put(module, data, "read/large")
        start, end = 3 * MiB - 17, 4 * MiB + 33
        expect_bytes(
            await self.read_all(module, handle, start=start, end=end),
            data[start:end],
            f"get_read_stream(start={start}, end={end}) of a {len(data)}-byte object",
        )

    async def test_seek_and_tell(self, module: StorageModule) -> None:
        self.require(module, "seek")
        handle = await self._stored(module)
        async with await module.get_read_stream(handle) as stream:
            position = await stream.seek(5000)
            assert position == 5000, f"stream.seek(5000): expected 5000, got {position!r}"
            assert stream.tell() == 5000, (
                f"stream.tell() after seek(5000): expected 5000, got {stream.tell()!r}"
            )
            expect_bytes(await stream.read(10), DATA[5000:5010], "read(10) after seek(5000)")
            assert stream.tell() == 5010, (
                f"stream.tell() after seek(5000) and read(10): expected 5010, got {stream.tell()!r}"
            )
            position = await stream.seek(20)
            assert position == 20, f"stream.seek(20) back: expected 20, got {position!r}"
            expect_bytes(await stream.read(5), DATA[20:25], "read(5) after seeking back to 20")

    async def test_seek_whence(self, module: StorageModule) -> None:
        self.require(module, "seek")
        handle = await self._stored(module)
        async with await module.get_read_stream(handle) as stream:
            await stream.seek(100)
            position = await stream.seek(50, os.SEEK_CUR)
            assert position == 150, f"seek(50, SEEK_CUR) at 100: expected 150, got {position!r}"
            expect_bytes(await stream.read(3), DATA[150:153], "read(3) after seek(50, SEEK_CUR)")
            position = await stream.seek(-10, os.SEEK_END)
            assert position == len(DATA) - 10, (
                f"seek(-10, SEEK_END): expected {len(DATA) - 10}, got {position!r}"
            )
            expect_bytes(await stream.read(), DATA[-10:], "read() after seek(-10, SEEK_END)")

    async def test_seek_to_the_end_reads_nothing(self, module: StorageModule) -> None:
        self.require(module, "seek")
        handle = await self._stored(module)
        async with await module.get_read_stream(handle) as stream:
            position = await stream.seek(0, os.SEEK_END)
            assert position == len(DATA), (
                f"seek(0, SEEK_END): expected {len(DATA)}, got {position!r}"
            )
            expect_bytes(await stream.read(), b"", "read() after seek(0, SEEK_END)")

    @pytest.mark.parametrize(("offset", "whence"), [(-1, 0), (10_241, 0), (1, 2), (-10_241, 2)])
    async def test_seek_outside_raises_value_error(
        self, module: StorageModule, offset: int, whence: int
    ) -> None:
        self.require(module, "seek")
        handle = await self._stored(module)
        async with await module.get_read_stream(handle) as stream:
            with expect_error(
                ValueError, f"seek({offset}, {whence}) outside [0, {len(DATA)}] (a file's rule)"
            ):
                await stream.seek(offset, whence)

    async def test_seek_is_relative_to_the_range(self, module: StorageModule) -> None:
        self.require(module, "seek")
        self.require(module, "range_read")
        handle = await self._stored(module)
        async with await module.get_read_stream(handle, start=1000, end=2000) as stream:
            await stream.seek(10)
            expect_bytes(
                await stream.read(5), DATA[1010:1015], "seek(10) then read(5) in range [1000, 2000)"
            )
            with expect_error(
                ValueError, "seek(1001) in a 1000-byte range (positions are relative)"
            ):
                await stream.seek(1001)
            await stream.seek(-1, os.SEEK_END)
            expect_bytes(
                await stream.read(), DATA[1999:2000], "seek(-1, SEEK_END) in range [1000, 2000)"
            )

    async def test_seek_backwards_in_a_large_object(self, module: StorageModule) -> None:
        self.require(module, "seek")
        data = self.pattern(self.large_object_size, seed=8)
        handle = await self.put(module, data, "read/seek-large")
        async with await module.get_read_stream(handle) as stream:
            await stream.seek(4 * MiB)
            expect_bytes(
                await stream.read(100), data[4 * MiB : 4 * MiB + 100], "read(100) after seek(4 MiB)"
            )
            await stream.seek(MiB)
            expect_bytes(
                await stream.read(100),
                data[MiB : MiB + 100],
                "read(100) after seeking back to 1 MiB",
            )

    async def test_readinto(self, module: StorageModule) -> None:
        handle = await self._stored(module)
        buffer = bytearray(4000)
        received = bytearray()
        async with await module.get_read_stream(handle) as stream:
            while count := await stream.readinto(buffer):
                received += buffer[:count]
            count = await stream.readinto(buffer)
            assert count == 0, f"readinto() at the end: expected 0, got {count!r}"
        expect_bytes(bytes(received), DATA, "reading a whole object with readinto()")

    async def test_readinto_after_seek(self, module: StorageModule) -> None:
        self.require(module, "seek")
        handle = await self._stored(module)
        buffer = memoryview(bytearray(16))
        async with await module.get_read_stream(handle) as stream:
            await stream.seek(300)
            count = await stream.readinto(buffer)
            assert 0 < count <= 16, (
                f"readinto() of a 16-byte buffer: expected 1 to 16 bytes, got {count!r}"
            )
            expect_bytes(
                bytes(buffer[:count]), DATA[300 : 300 + count], "readinto() after seek(300)"
            )

    async def test_async_iteration(self, module: StorageModule) -> None:
        data = self.pattern(3 * MiB + 11, seed=9)
        handle = await self.put(module, data, "read/iterate")
        received = bytearray()
        async with await module.get_read_stream(handle) as stream:
            async for chunk in stream:
                assert chunk, "async iteration over a stream: expected non-empty chunks, got b''"
                received += chunk
        expect_bytes(bytes(received), data, "async iteration over a stream")

    async def test_anyio_buffered_wrapper(self, module: StorageModule) -> None:
        handle = await self.put(module, b"line one\nline two\nrest", "read/lines")
        async with await module.get_read_stream(handle) as stream:
            buffered = BufferedByteReceiveStream(stream)
            expect_bytes(
                await buffered.receive_until(b"\n", 100),
                b"line one",
                "anyio's BufferedByteReceiveStream.receive_until() over the stream",
            )
            expect_bytes(
                await buffered.receive_exactly(4), b"line", "receive_exactly(4) over the stream"
            )
            with expect_error(anyio.IncompleteRead, "receive_exactly(100) with 14 bytes left"):
                await buffered.receive_exactly(100)

    async def test_receive_raises_end_of_stream(self, module: StorageModule) -> None:
        handle = await self.put(module, b"abc", "read/receive")
        async with await module.get_read_stream(handle) as stream:
            expect_bytes(await stream.receive(), b"abc", "stream.receive() (anyio's API)")
            with expect_error(anyio.EndOfStream, "stream.receive() at the end"):
                await stream.receive()

    async def test_stream_info(self, module: StorageModule) -> None:
        handle = await self.put(
            module, DATA, "read/info", metadata={"k": "v"}, content_type="application/x-test"
        )
        async with await module.get_read_stream(handle, start=1, end=3) as stream:
            info = stream.info
            assert info.handle == handle, (
                f"stream.info.handle: expected {handle!r}, got {info.handle!r}"
            )
            assert info.size == len(DATA), (
                f"stream.info.size of a ranged stream: expected the whole object's size, "
                f"{len(DATA)}, got {info.size!r}"
            )
            assert stream.size == 2, (
                f"stream.size of the range [1, 3): expected 2, got {stream.size!r}"
            )
            if module.capabilities().get("metadata"):
                assert info.content_type == "application/x-test", (
                    f"stream.info.content_type: expected 'application/x-test', "
                    f"got {info.content_type!r}"
                )
                assert dict(info.metadata) == {"k": "v"}, (
                    f"stream.info.metadata: expected {{'k': 'v'}}, got {dict(info.metadata)!r}"
                )

    async def test_closed_stream_refuses_reads(self, module: StorageModule) -> None:
        handle = await self._stored(module)
        stream = await module.get_read_stream(handle)
        await stream.aclose()
        await stream.aclose()  # closing twice is harmless
        with expect_error(anyio.ClosedResourceError, "stream.read(1) after aclose()"):
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
            expect_bytes(
                b"".join(parts[index]),
                self.pattern(5000, index),
                f"stream {index} of 8 open at once, read in turns",
            )
