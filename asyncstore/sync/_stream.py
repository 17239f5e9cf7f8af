"""`SyncReadStream`: a blocking, buffered file object over an async `ReadStream`.

Each read that the buffer cannot satisfy costs one round trip to the event loop that owns the
async stream; small reads (``readline`` loops, ``read(4)`` in a header parser) are served from
a read-ahead buffer, and a seek inside the buffer costs nothing.
"""

from __future__ import annotations

import io
import operator
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from asyncstore.info import ObjectInfo
from asyncstore.streams import ByteSource, ReadStream
from asyncstore.sync._portal import current_pid

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["DEFAULT_BUFFER_SIZE", "Runner", "SyncReadStream", "loop_source", "open_stream"]

T = TypeVar("T")

DEFAULT_BUFFER_SIZE = 64 * 1024
"""How many bytes a small read fetches ahead."""


class Runner(Protocol):
    """Runs coroutines on the event loop that owns a module, from another thread."""

    def call(self, func: Callable[..., Awaitable[T]], /, *args: Any) -> T:
        """Run ``func(*args)`` on the loop and return its result, blocking until done."""
        ...

    def call_soon(self, func: Callable[..., Awaitable[object]], /, *args: Any) -> None:
        """Start ``func(*args)`` on the loop without waiting, if possible (for finalisers)."""
        ...


async def _read_at(stream: ReadStream, position: int, size: int) -> bytes:
    """Read ``size`` bytes at ``position`` (fewer only at the end); all that remain if < 0."""
    if stream.tell() != position:
        await stream.seek(position)
    if size < 0:
        return await stream.read()
    size = min(size, stream.size - position)
    if size <= 0:
        return b""
    data = await stream.read(size)
    if len(data) == size or not data:
        return data
    # Sized reads may return less than asked; a file object's read(n) may not.
    parts = [data]
    missing = size - len(data)
    while missing > 0 and (data := await stream.read(missing)):
        parts.append(data)
        missing -= len(data)
    return b"".join(parts)


async def _readinto_at(stream: ReadStream, position: int, view: memoryview) -> int:
    """Fill ``view`` from ``position`` (less only at the end); return how many bytes."""
    if stream.tell() != position:
        await stream.seek(position)
    view = view[: max(0, stream.size - position)]
    filled = 0
    while filled < len(view) and (count := await stream.readinto(view[filled:])):
        filled += count
    return filled


class _Using:
    """Holds a stream's lock for one call, once the stream is known to be usable.

    A class rather than a generator context manager: every read goes through it.
    """

    __slots__ = ("_stream",)

    def __init__(self, stream: SyncReadStream) -> None:
        self._stream = stream

    def __enter__(self) -> None:
        stream = self._stream
        # The fork check comes first: a lock held by another thread at fork time stays held
        # forever in the child.
        if stream._pid != current_pid():
            stream._check_usable()
        stream._lock.acquire()
        try:
            stream._check_usable()
        except BaseException:
            stream._lock.release()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self._stream._lock.release()


class SyncReadStream(io.BufferedIOBase):
    """A blocking, seekable, read-only binary file over an object's bytes.

    Returned by `SyncStore.get_read_stream`; works wherever a binary file does
    (`shutil.copyfileobj`, `zipfile`, `tarfile`, `io.TextIOWrapper`). Reads are buffered
    (``buffer_size`` bytes ahead), so small reads and `readline` loops cost one round trip
    to the event loop per buffer, not per call. Positions are relative to the start of the
    range the stream was opened with; seeking outside ``[0, size]`` raises `ValueError`, as
    on `asyncstore.ReadStream`.

    A stream may be shared between threads (calls are serialised), but not across
    ``os.fork()``: open it again in the child.
    """

    def __init__(
        self,
        stream: ReadStream,
        runner: Runner,
        *,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        whole: bytes | None = None,
    ) -> None:
        super().__init__()
        self._stream = stream
        self._runner = runner
        self._buffer_size = max(1, buffer_size)
        # With ``whole`` (from `open_stream`), every byte is here and the stream is closed.
        self._complete = whole is not None
        self._buffer = b"" if whole is None else whole
        self._buffer_start = 0
        self._pos = 0
        self._pid = current_pid()
        self._lock = threading.Lock()

    # ---- description ---------------------------------------------------------------------

    @property
    def info(self) -> ObjectInfo:
        """The `ObjectInfo` of the whole object."""
        return self._stream.info

    @property
    def size(self) -> int:
        """The number of bytes in the stream (the range, for a ranged stream)."""
        return self._stream.size

    def readable(self) -> bool:
        """Return True: the stream can be read."""
        self._check_usable()
        return True

    def seekable(self) -> bool:
        """Return True: the stream can seek."""
        self._check_usable()
        return True

    def writable(self) -> bool:
        """Return False: the stream is read-only."""
        return False

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return (
            f"<SyncReadStream handle={self.info.handle!r} size={self.size} pos={self._pos}{state}>"
        )

    # ---- reading -------------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed stream")
        if self._pid != current_pid():
            raise RuntimeError(
                "this stream was opened before os.fork(); open it again in this process"
            )

    def _using(self) -> _Using:
        return _Using(self)

    def _buffered(self) -> memoryview:
        """Return the buffered bytes from the current position on (possibly empty)."""
        offset = self._pos - self._buffer_start
        if 0 <= offset <= len(self._buffer):
            return memoryview(self._buffer)[offset:]
        return memoryview(b"")

    def _fill(self) -> memoryview:
        """Fetch a buffer's worth at the current position; return what is buffered."""
        if self._complete:
            return self._buffered()
        if self._pos >= self.size:  # known to be the end: no round trip
            return memoryview(b"")
        self._buffer = self._runner.call(_read_at, self._stream, self._pos, self._buffer_size)
        self._buffer_start = self._pos
        return memoryview(self._buffer)

    def read(self, size: int | None = -1) -> bytes:
        """Read ``size`` bytes (fewer only at the end), or all that remain if omitted/negative."""
        with self._using():
            return self._read(-1 if size is None else size)

    def _read(self, size: int) -> bytes:
        available = self._buffered()
        if 0 <= size <= len(available) or self._complete:
            count = len(available) if size < 0 else min(size, len(available))
            self._pos += count
            return bytes(available[:count])
        head = bytes(available)
        self._pos += len(head)
        if size < 0:
            tail = self._runner.call(_read_at, self._stream, self._pos, -1)
        elif size - len(head) >= self._buffer_size:
            tail = self._runner.call(_read_at, self._stream, self._pos, size - len(head))
        else:
            refill = self._fill()
            tail = bytes(refill[: size - len(head)])
        self._pos += len(tail)
        return head + tail if head else tail

    def read1(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes with at most one round trip to the loop."""
        with self._using():
            available = self._buffered()
            if not available:
                available = self._fill()
            count = len(available) if size < 0 else min(size, len(available))
            self._pos += count
            return bytes(available[:count])

    def readinto(self, buffer: Buffer) -> int:
        """Fill ``buffer`` (less only at the end); return how many bytes were read."""
        return self._readinto(buffer, whole=True)

    def readinto1(self, buffer: Buffer) -> int:
        """Read into ``buffer`` with at most one round trip; return how many bytes."""
        return self._readinto(buffer, whole=False)

    def _readinto(self, buffer: Buffer, *, whole: bool) -> int:
        with self._using():
            view = memoryview(buffer).cast("B")
            available = self._buffered()
            count = min(len(view), len(available))
            view[:count] = available[:count]
            self._pos += count
            if count == len(view) or (count and not whole) or self._complete:
                return count
            rest = view[count:]
            if len(rest) >= self._buffer_size:
                # Large reads go straight into the caller's buffer, without a copy.
                got = self._runner.call(_readinto_at, self._stream, self._pos, rest)
            else:
                refill = self._fill()
                got = min(len(rest), len(refill))
                rest[:got] = refill[:got]
            self._pos += got
            return count + got

    def peek(self, size: int = 0) -> bytes:
        """Return buffered bytes from the current position without moving it."""
        with self._using():
            available = self._buffered()
            if not available:
                available = self._fill()
            return bytes(available)

    def readline(self, size: int | None = -1) -> bytes:
        """Read up to and including the next newline (at most ``size`` bytes)."""
        limit = -1 if size is None else size
        with self._using():
            parts: list[bytes] = []
            taken = 0
            while limit < 0 or taken < limit:
                if not self._buffered() and not self._fill():
                    break
                start = self._pos - self._buffer_start
                stop = len(self._buffer)
                if limit >= 0:
                    stop = min(stop, start + limit - taken)
                index = self._buffer.find(b"\n", start, stop)
                end = stop if index < 0 else index + 1
                parts.append(self._buffer[start:end])
                taken += end - start
                self._pos += end - start
                if index >= 0:
                    break
            return b"".join(parts)

    # ---- positioning ---------------------------------------------------------------------

    def tell(self) -> int:
        """Return the current position."""
        self._check_usable()
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move to a new position and return it; no I/O happens until the next read.

        Raises:
            TypeError: If ``offset`` is not an integer.
            ValueError: If the position is outside ``[0, size]`` or ``whence`` is unknown.
        """
        offset = operator.index(offset)  # a float would fail only at the next read
        with self._using():
            if whence == os.SEEK_SET:
                target = offset
            elif whence == os.SEEK_CUR:
                target = self._pos + offset
            elif whence == os.SEEK_END:
                target = self.size + offset
            else:
                raise ValueError(f"whence must be 0, 1 or 2, not {whence!r}")
            if not 0 <= target <= self.size:
                raise ValueError(f"cannot seek to {target}: the stream holds {self.size} bytes")
            self._pos = target
            return target

    # ---- closing -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the stream and release what the module holds for it; closing twice is fine."""
        if self.closed:
            return
        try:
            if self._pid == current_pid() and not self._complete:
                try:
                    self._runner.call(self._stream.aclose)
                except RuntimeError:
                    # Closed where blocking is impossible (a wrapper's finaliser on a loop).
                    self._runner.call_soon(self._stream.aclose)
        finally:
            self._buffer = b""
            super().close()

    def __del__(self) -> None:
        # A finaliser may run in any thread, the loop's own included: never block here.
        if getattr(self, "_stream", None) is None:  # __init__ did not finish
            return
        if not self.closed:
            if self._pid == current_pid() and not self._complete:
                self._runner.call_soon(self._stream.aclose)
            self._buffer = b""
            super().close()

    # ---- handing the bytes to a module on the same loop --------------------------------

    def _drains_on(self, runner: Runner) -> bool:
        return runner is self._runner and self._pid == current_pid() and not self.closed

    async def _drain(self) -> AsyncIterator[bytes]:
        """Yield the remaining bytes on the loop (the owning thread waits meanwhile)."""
        available = bytes(self._buffered())
        if available:
            self._pos += len(available)
            yield available
        if self._complete:
            return
        while data := await _read_at(self._stream, self._pos, self._stream.chunk_size):
            self._pos += len(data)
            yield data


async def open_stream(
    opening: Awaitable[ReadStream], buffer_size: int
) -> tuple[ReadStream, bytes | None]:
    """Open a stream on the loop, reading and closing a small one in the same round trip.

    Returns the stream and, if it holds at most ``buffer_size`` bytes, all of them (the
    stream is then closed): reading a small object costs one round trip, not three.
    """
    stream = await opening
    if stream.size > buffer_size:
        return stream, None
    try:
        return stream, await stream.read()
    finally:
        await stream.aclose()


async def _iterate_in_thread(source: Iterable[object]) -> AsyncIterator[object]:
    import anyio.to_thread

    iterator = iter(source)
    end = object()
    while (chunk := await anyio.to_thread.run_sync(next, iterator, end)) is not end:
        yield chunk


def loop_source(source: object, runner: Runner) -> ByteSource:
    """Prepare a byte source given by a thread for a module running on ``runner``'s loop.

    Bytes, lists and file objects pass through (the module reads files in worker threads).
    A `SyncReadStream` of the same loop is read there directly, without a worker thread per
    chunk. Other sync iterables (generators) are advanced in worker threads, so that a slow
    generator never blocks the loop that every thread shares.
    """
    return cast("ByteSource", _loop_source(source, runner))


def _loop_source(source: object, runner: Runner) -> object:
    if isinstance(source, SyncReadStream) and source._drains_on(runner):
        return source._drain()
    if isinstance(source, (str, bytes, bytearray, memoryview, list, tuple, Mapping)):
        return source
    if callable(getattr(source, "read", None)) or hasattr(source, "__aiter__"):
        return source
    try:
        memoryview(source)  # type: ignore[arg-type]
    except TypeError:
        pass
    else:
        return source
    if isinstance(source, Iterable):
        return _iterate_in_thread(source)
    return source
