"""Byte streams: the `ReadStream` every module returns, and the byte sources it accepts.

`ReadStream` is an `anyio.abc.ByteReceiveStream`, so anyio's buffered and text wrappers work on
it, with the storage contract added: `size`, `read`, `readinto`, `seek`, `tell` and `info`.
A backend subclasses it and implements `_read_at` (and, for speed, `_readinto_at`).

`iter_source` turns any accepted byte source into an async iterator of chunks.
"""

from __future__ import annotations

import inspect
import operator
import os
from abc import abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, Union, runtime_checkable

import anyio
from anyio.abc import ByteReceiveStream

from asyncstore.errors import InvalidRangeError
from asyncstore.info import ObjectInfo

if TYPE_CHECKING:
    from typing import TypeAlias

    from typing_extensions import Buffer, Self

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "AsyncReadable",
    "ByteSource",
    "BytesReadStream",
    "ReadStream",
    "SyncReadable",
    "check_range",
    "iter_source",
    "source_length",
]

DEFAULT_CHUNK_SIZE = 1 << 20
"""The chunk size used when a stream or source is read without a size."""


@runtime_checkable
class AsyncReadable(Protocol):
    """An object with an async ``read(n)`` returning bytes (b"" at the end)."""

    async def read(self, n: int = -1, /) -> bytes:
        """Read up to ``n`` bytes."""
        ...


@runtime_checkable
class SyncReadable(Protocol):
    """A binary file object with a blocking ``read(n)``; it is read in a worker thread."""

    def read(self, n: int = -1, /) -> bytes:
        """Read up to ``n`` bytes."""
        ...


ByteSource: TypeAlias = Union[
    "Buffer",
    "ReadStream",
    AsyncReadable,
    SyncReadable,
    AsyncIterable["Buffer"],
    Iterable["Buffer"],
]
"""Everything `put` and `assign` accept as the bytes to store."""

_ACCEPTED = (
    "bytes-like objects, async or sync iterables of bytes-like chunks, objects with an async "
    "or sync binary read(n), or a ReadStream"
)


def check_range(start: int, end: int | None, *, store: str | None = None) -> None:
    """Check the half-open byte range ``[start, end)`` given to `get_read_stream`.

    Raises:
        InvalidRangeError: If ``start`` is negative, or ``end`` is before ``start``, or either
            is not an int (a bool is refused too: backends put positions in requests).
    """
    if not _is_position(start) or start < 0:
        raise InvalidRangeError(f"start must be an int >= 0, not {start!r}", store=store)
    if end is not None and (not _is_position(end) or end < start):
        raise InvalidRangeError(
            f"end must be None or an int >= start ({start}), not {end!r}", store=store
        )


def _is_position(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class ReadStream(ByteReceiveStream):
    """An async, seekable stream of an object's bytes, or of a range of them.

    A stream opened with ``start``/``end`` behaves like a file holding just that range:
    `size` is the length of the range and positions are relative to its start. The end is
    clamped to the object's size, and a range that starts past the end is empty.

    Reads return ``b""`` at the end. Seeking outside ``[0, size]`` raises `ValueError`.
    Subclasses implement `_read_at`, and may override `_readinto_at` and `_close`.
    """

    chunk_size: int = DEFAULT_CHUNK_SIZE
    """How many bytes `read()` without a size and async iteration ask for at a time."""

    def __init__(self, info: ObjectInfo, *, start: int = 0, end: int | None = None) -> None:
        check_range(start, end)
        stop = info.size if end is None else min(end, info.size)
        self._info = info
        self._offset = min(start, info.size)
        self._size = max(0, stop - self._offset)
        self._pos = 0
        self._closed = False

    @property
    def info(self) -> ObjectInfo:
        """The `ObjectInfo` of the whole object."""
        return self._info

    @property
    def size(self) -> int:
        """The number of bytes in the stream (the range, for a ranged stream)."""
        return self._size

    @property
    def closed(self) -> bool:
        """Whether `aclose` has been called."""
        return self._closed

    def tell(self) -> int:
        """Return the current position, relative to the start of the stream."""
        return self._pos

    @abstractmethod
    async def _read_at(self, offset: int, max_bytes: int) -> bytes:
        """Read up to ``max_bytes`` (> 0) at ``offset``, an absolute position in the object.

        The base class never asks past the stream's end; sequential reads call this with
        increasing offsets, so a backend can keep one underlying stream open between calls.
        """

    async def _readinto_at(self, offset: int, buffer: memoryview) -> int:
        """Read into ``buffer`` at absolute ``offset``; override to avoid a copy."""
        data = await self._read_at(offset, len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _view_at(self, offset: int, count: int) -> memoryview | None:
        """Lend the ``count`` (> 0) bytes at absolute ``offset`` as a read-only view, or None.

        A stream over bytes it holds in memory overrides this to hand them out without a copy
        (the view stays valid after the stream closes); the default lends nothing. Like
        `_read_at`, it is never asked past the stream's end, and it lends all ``count`` bytes.
        """
        return None

    async def _close(self) -> None:
        """Release what the stream holds; called once by `aclose`."""

    def _check_open(self) -> None:
        if self._closed:
            raise anyio.ClosedResourceError

    async def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes (all that remain if ``n`` is negative); b"" at the end."""
        self._check_open()
        remaining = self._size - self._pos
        want = remaining if n is None or n < 0 else min(n, remaining)
        if want <= 0:
            return b""
        if n is not None and n >= 0:
            data = await self._read_at(self._offset + self._pos, want)
            self._pos += len(data)
            return data
        # Read everything that remains into one preallocated buffer.
        buffer = bytearray(want)
        view = memoryview(buffer)
        filled = 0
        while filled < want:
            count = await self._readinto_at(self._offset + self._pos, view[filled:])
            if count <= 0:
                break
            filled += count
            self._pos += count
        del view
        if filled < want:
            del buffer[filled:]
        return bytes(buffer)

    async def readinto(self, buffer: Buffer) -> int:
        """Read into a writable buffer; return how many bytes were read (0 at the end)."""
        self._check_open()
        view = memoryview(buffer).cast("B")
        want = min(len(view), self._size - self._pos)
        if want <= 0:
            return 0
        count = await self._readinto_at(self._offset + self._pos, view[:want])
        self._pos += count
        return count

    def _read_view(self, n: int) -> memoryview | None:
        """Read ``n`` bytes (fewer only at the end) as a read-only view, with no copy.

        Returns None, and moves nothing, when the stream cannot lend its bytes (see
        `_view_at`); the caller then reads with `read` or `readinto`.
        """
        self._check_open()
        want = min(n, self._size - self._pos)
        if want <= 0:
            return memoryview(b"")
        view = self._view_at(self._offset + self._pos, want)
        if view is not None:
            self._pos += len(view)
        return view

    async def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move to a new position and return it.

        Args:
            offset: The offset, interpreted according to ``whence``.
            whence: ``os.SEEK_SET`` (0), ``os.SEEK_CUR`` (1) or ``os.SEEK_END`` (2).

        Raises:
            TypeError: If ``offset`` is not an integer (as for a file).
            ValueError: If the new position is outside ``[0, size]`` or ``whence`` is unknown.
        """
        self._check_open()
        # A float would be accepted by the comparisons below and fail on a later read.
        offset = operator.index(offset)
        if whence == os.SEEK_SET:
            target = offset
        elif whence == os.SEEK_CUR:
            target = self._pos + offset
        elif whence == os.SEEK_END:
            target = self._size + offset
        else:
            raise ValueError(f"whence must be 0, 1 or 2, not {whence!r}")
        if not 0 <= target <= self._size:
            raise ValueError(f"cannot seek to {target}: the stream holds {self._size} bytes")
        self._pos = target
        return target

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Receive up to ``max_bytes``; raise `anyio.EndOfStream` at the end (anyio's API)."""
        data = await self.read(max_bytes)
        if not data:
            raise anyio.EndOfStream
        return data

    async def __anext__(self) -> bytes:
        data = await self.read(self.chunk_size)
        if not data:
            raise StopAsyncIteration
        return data

    async def aclose(self) -> None:
        """Close the stream and release its resources; closing twice is harmless."""
        if not self._closed:
            self._closed = True
            await self._close()

    async def __aenter__(self) -> Self:
        return self

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} handle={self._info.handle!r} size={self._size} "
            f"pos={self._pos}{' closed' if self._closed else ''}>"
        )


class BytesReadStream(ReadStream):
    """A `ReadStream` over bytes held in memory.

    The bytes must not change while the stream is open: it lends views of them (`_view_at`).
    """

    def __init__(
        self, data: bytes | bytearray, info: ObjectInfo, *, start: int = 0, end: int | None = None
    ) -> None:
        super().__init__(info, start=start, end=end)
        self._data = memoryview(data).toreadonly()

    async def _read_at(self, offset: int, max_bytes: int) -> bytes:
        return bytes(self._data[offset : offset + max_bytes])

    async def _readinto_at(self, offset: int, buffer: memoryview) -> int:
        chunk = self._data[offset : offset + len(buffer)]
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def _view_at(self, offset: int, count: int) -> memoryview:
        return self._data[offset : offset + count]

    async def _close(self) -> None:
        self._data = memoryview(b"")


def _as_view(chunk: object) -> memoryview:
    if isinstance(chunk, str):
        raise TypeError(
            "a byte source yielded a str chunk; encode text first (for example text.encode()); "
            f"accepted: {_ACCEPTED}"
        )
    try:
        return memoryview(chunk).cast("B")  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"a byte source yielded a {type(chunk).__name__}; chunks must be bytes-like "
            f"(accepted: {_ACCEPTED})"
        ) from None


def source_length(source: object) -> int | None:
    """Return how many bytes a source holds when that is known without reading, else None."""
    if isinstance(source, (bytes, bytearray)):
        return len(source)
    if isinstance(source, memoryview):
        return source.nbytes
    if isinstance(source, ReadStream):
        return source.size - source.tell()
    return None


async def iter_source(
    source: object, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> AsyncIterator[bytes | memoryview]:
    """Yield the bytes of a byte source as non-empty chunks.

    Sync file objects are read in a worker thread so the event loop never blocks; nothing
    is read ahead, so a large source is never held in memory. Exceptions raised by the source
    propagate unchanged.

    Raises:
        TypeError: If the source is not an accepted kind (a `str` included).
    """
    if isinstance(source, str):
        raise TypeError(
            f"cannot store a str: encode it first (text.encode()); accepted: {_ACCEPTED}"
        )
    if isinstance(source, ReadStream):
        while data := await source.read(chunk_size):
            yield data
        return
    view = _buffer_of(source)
    if view is not None:
        for index in range(0, view.nbytes, chunk_size):
            yield view[index : index + chunk_size]
        return
    read = getattr(source, "read", None)
    if callable(read):
        async for chunk in _iter_reader(read, chunk_size):
            yield chunk
        return
    if isinstance(source, AsyncIterable):
        async for chunk in source:
            view = _as_view(chunk)
            if view.nbytes:
                yield view
        return
    if isinstance(source, Iterable) and not isinstance(source, Mapping):
        for chunk in source:
            view = _as_view(chunk)
            if view.nbytes:
                yield view
        return
    raise TypeError(f"cannot store a {type(source).__name__}; accepted: {_ACCEPTED}")


def _buffer_of(source: object) -> memoryview | None:
    try:
        view = memoryview(source)  # type: ignore[arg-type]
    except TypeError:
        return None
    if not view.c_contiguous:  # a strided slice, such as memoryview(data)[::2]
        raise TypeError(
            "cannot store a buffer that is not contiguous in memory; copy it first "
            f"(bytes(view)); accepted: {_ACCEPTED}"
        )
    return view.cast("B")


async def _iter_reader(read: Any, chunk_size: int) -> AsyncIterator[bytes | memoryview]:
    # Imported here: loading anyio's event-loop machinery is not the cost of importing us.
    import anyio.lowlevel
    import anyio.to_thread

    is_async = inspect.iscoroutinefunction(read)
    while True:
        if is_async:
            chunk = await read(chunk_size)
        else:
            chunk = await anyio.to_thread.run_sync(read, chunk_size)
            if inspect.isawaitable(chunk):
                # A read() that returns an awaitable without being a coroutine function.
                is_async = True
                chunk = await chunk
        if chunk is None:
            # A non-blocking raw file with nothing to read yet; ask again.
            await anyio.lowlevel.checkpoint()
            continue
        if isinstance(chunk, str):
            raise TypeError("the source's read() returned str: open the file in binary mode")
        view = _as_view(chunk)
        if not view.nbytes:
            return
        yield view
