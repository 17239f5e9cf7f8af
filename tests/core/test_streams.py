from __future__ import annotations

import array
import io
import os
from collections.abc import AsyncIterator

import anyio
import pytest

from asyncstore import ObjectInfo
from asyncstore.errors import InvalidRangeError
from asyncstore.streams import (
    BytesReadStream,
    ReadStream,
    check_range,
    iter_source,
    source_length,
)

pytestmark = pytest.mark.anyio


async def collect(source: object, chunk_size: int = 4) -> list[bytes]:
    return [bytes(chunk) async for chunk in iter_source(source, chunk_size=chunk_size)]


async def test_bytes_like_sources_are_sliced() -> None:
    assert await collect(b"abcdefghij") == [b"abcd", b"efgh", b"ij"]
    assert await collect(bytearray(b"abc")) == [b"abc"]
    assert await collect(memoryview(b"xxabcxx")[2:5]) == [b"abc"]
    assert await collect(b"") == []


async def test_other_buffer_objects_are_bytes() -> None:
    data = array.array("I", [1, 2])
    assert b"".join(await collect(data, 100)) == data.tobytes()


async def test_sync_and_async_iterables() -> None:
    async def agen() -> AsyncIterator[bytes]:
        yield b"a"
        yield b""
        yield bytearray(b"b")

    assert await collect(agen()) == [b"a", b"b"]
    assert await collect(iter([b"x", memoryview(b"y")])) == [b"x", b"y"]


async def test_sync_file_is_read_in_a_worker_thread() -> None:
    import threading

    main = threading.get_ident()
    threads: set[int] = set()

    class Recording(io.BytesIO):
        def read(self, n: int | None = -1) -> bytes:
            threads.add(threading.get_ident())
            return super().read(n)

    assert b"".join(await collect(Recording(b"0123456789"))) == b"0123456789"
    assert threads and main not in threads


async def test_async_reader() -> None:
    class Reader:
        def __init__(self) -> None:
            self.buffer = io.BytesIO(b"async data")

        async def read(self, n: int = -1) -> bytes:
            return self.buffer.read(n)

    assert b"".join(await collect(Reader())) == b"async data"


async def test_reader_returning_awaitables_without_being_async() -> None:
    class Reader:
        def __init__(self) -> None:
            self.buffer = io.BytesIO(b"awaitable")

        def read(self, n: int = -1) -> object:
            async def later() -> bytes:
                return self.buffer.read(n)

            return later()

    assert b"".join(await collect(Reader())) == b"awaitable"


async def test_read_stream_source_reads_from_its_position() -> None:
    info = ObjectInfo("h", 10)
    stream = BytesReadStream(b"0123456789", info)
    await stream.seek(3)
    assert source_length(stream) == 7
    assert b"".join(await collect(stream)) == b"3456789"


@pytest.mark.parametrize("source", ["text", 5, None, object(), 1.0, {"a": 1}])
async def test_unaccepted_sources_raise_type_error(source: object) -> None:
    with pytest.raises(TypeError, match=r"accepted|chunks must be bytes-like"):
        await collect(source)


async def test_strided_buffer_is_refused_with_what_is_accepted() -> None:
    # A strided view is a buffer but not bytes-like; its own cast error said nothing useful.
    with pytest.raises(TypeError, match=r"contiguous.*accepted"):
        await collect(memoryview(b"abcdef")[::2])
    assert b"".join(await collect(memoryview(b"abcdef")[1:5])) == b"bcde"


async def test_str_error_says_to_encode() -> None:
    with pytest.raises(TypeError, match=r"encode"):
        await collect("text")
    with pytest.raises(TypeError, match=r"encode"):
        await collect(["ok", b"x"])


async def test_text_mode_file_is_refused() -> None:
    with pytest.raises(TypeError, match="binary mode"):
        await collect(io.StringIO("text"))


async def test_source_errors_propagate_unchanged() -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"a"
        raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        await collect(broken())


def test_source_length() -> None:
    assert source_length(b"abc") == 3
    assert source_length(memoryview(b"abcd")) == 4
    assert source_length(iter([b"a"])) is None


def test_check_range() -> None:
    check_range(0, None)
    check_range(5, 5)
    # A bool is an int to Python, but a position sent in a request would read "True".
    for start, end in ((-1, None), (3, 2), ("0", None), (True, None), (0, False), (0, 1.0)):
        with pytest.raises(InvalidRangeError):
            check_range(start, end)  # type: ignore[arg-type]


async def test_read_stream_contract() -> None:
    stream = BytesReadStream(b"0123456789", ObjectInfo("h", 10), start=2, end=8)
    assert stream.size == 6 and stream.info.size == 10
    assert await stream.read(2) == b"23"
    assert stream.tell() == 2
    assert await stream.seek(-1, os.SEEK_END) == 5
    assert await stream.read() == b"7"
    with pytest.raises(ValueError):
        await stream.seek(7)
    with pytest.raises(ValueError):
        await stream.seek(0, 3)
    await stream.aclose()
    assert stream.closed
    with pytest.raises(anyio.ClosedResourceError):
        await stream.read()
    assert "closed" in repr(stream)


async def test_bytes_read_stream_lends_its_bytes_without_a_copy() -> None:
    data = b"0123456789"
    stream = BytesReadStream(data, ObjectInfo("h", 10), start=2, end=8)
    first = stream._read_view(3)
    assert first is not None and first.obj is data  # a view of the bytes, not a copy
    assert (bytes(first), first.readonly, stream.tell()) == (b"234", True, 3)
    rest = stream._read_view(10)  # clipped to the stream's range
    assert rest is not None and (bytes(rest), stream.tell()) == (b"567", 6)
    end = stream._read_view(1)
    assert end is not None and len(end) == 0
    await stream.aclose()
    assert bytes(first) == b"234"  # a lent view outlives the stream
    with pytest.raises(anyio.ClosedResourceError):
        stream._read_view(1)


async def test_a_stream_that_cannot_lend_its_bytes_moves_nothing() -> None:
    class Plain(ReadStream):
        async def _read_at(self, offset: int, max_bytes: int) -> bytes:
            return b"x" * max_bytes

    stream = Plain(ObjectInfo("h", 10))
    assert stream._read_view(4) is None
    assert stream.tell() == 0
    assert await stream.read(4) == b"xxxx"


async def test_seek_refuses_a_non_integer_offset() -> None:
    # A float offset used to be taken as the position, and only a later read failed.
    stream = BytesReadStream(b"0123456789", ObjectInfo("h", 10))
    for offset in (1.5, 2.0, "1", None):
        with pytest.raises(TypeError):
            await stream.seek(offset)  # type: ignore[arg-type]
    assert stream.tell() == 0
    assert await stream.read() == b"0123456789"


async def test_text_wrapper_works_on_read_streams() -> None:
    from anyio.streams.text import TextReceiveStream

    stream = BytesReadStream("héllo".encode(), ObjectInfo("h", 6))
    text = "".join([part async for part in TextReceiveStream(stream)])
    assert text == "héllo"
