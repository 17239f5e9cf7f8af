"""The kinds of output a host gives a transform, and the pipe that feeds a consumer.

* `StoreOutput`: the bytes become one atomic write to a store, which starts when the
  metadata is final and is failed (so that it stores nothing) if the transform fails.
* `PipeOutput`: the bytes wait in a `Pipe` for a reader (a transformed read).
* `WritableOutput`: the bytes go to the caller's writable stream or file as they come.
* `CountingOutput`: the bytes are counted and dropped (learning a transformed size).
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
from anyio.abc import TaskGroup

from asyncstore.transforms._streams import OutputStream

__all__ = [
    "DEFAULT_PIPE_BYTES",
    "CountingOutput",
    "OutputAbandonedError",
    "Pipe",
    "PipeOutput",
    "StoreOutput",
    "WritableOutput",
]

DEFAULT_PIPE_BYTES = 1 << 20
"""How many bytes a pipe holds before its writer waits (at least one chunk always fits)."""


class OutputAbandonedError(Exception):
    """The consumer of an output went away (its store write failed, or the reader closed)."""


class Pipe:
    """A bounded hand-off of byte chunks from one writer task to one reader task.

    The writer waits while the pipe holds `max_bytes` or more (back-pressure). The writer
    ends it with `close` (the reader then gets b"") or `fail` (the reader gets the error,
    never a short stream); the reader may `abandon` it (the writer's next `send` raises).
    """

    def __init__(self, max_bytes: int = DEFAULT_PIPE_BYTES) -> None:
        self._max_bytes = max_bytes
        self._items: deque[bytes | bytearray] = deque()
        self._held = 0
        self._closed = False
        self._error: BaseException | None = None
        self._abandoned: BaseException | None = None
        self._reader_wakeup: anyio.Event | None = None
        self._writer_wakeup: anyio.Event | None = None

    def _wake_reader(self) -> None:
        if self._reader_wakeup is not None:
            self._reader_wakeup.set()
            self._reader_wakeup = None

    def _wake_writer(self) -> None:
        if self._writer_wakeup is not None:
            self._writer_wakeup.set()
            self._writer_wakeup = None

    async def send(self, chunk: bytes | bytearray) -> None:
        """Hand over a chunk; return once the pipe holds less than its limit again.

        Waiting after the hand-over (not before) lets the reader use each chunk while it is
        still in the CPU's cache, before the writer makes the next one.

        Raises:
            OutputAbandonedError: If the reader abandoned the pipe.
        """
        if self._abandoned is not None:
            raise OutputAbandonedError("the output's consumer went away") from self._abandoned
        self._items.append(chunk)
        self._held += len(chunk)
        self._wake_reader()
        while self._held >= self._max_bytes and self._abandoned is None:
            self._writer_wakeup = event = anyio.Event()
            await event.wait()
        if self._abandoned is not None:
            raise OutputAbandonedError("the output's consumer went away") from self._abandoned

    def close(self) -> None:
        """End the stream: the reader gets what was sent, then b""."""
        self._closed = True
        self._wake_reader()

    def fail(self, error: BaseException) -> None:
        """End the stream with an error: the reader gets ``error`` instead of the rest."""
        if not self._closed:
            self._error = error
            self._closed = True
            self._items.clear()
            self._held = 0
        self._wake_reader()

    def abandon(self, reason: BaseException | None = None) -> None:
        """Stop reading: the writer's next `send` raises `OutputAbandonedError`."""
        self._abandoned = reason or OutputAbandonedError("the reader closed the stream")
        self._items.clear()
        self._held = 0
        self._wake_writer()

    @property
    def error(self) -> BaseException | None:
        """The error the stream was failed with, if it was."""
        return self._error

    async def receive(self) -> bytes | bytearray:
        """Return the next chunk; b"" at the end.

        Raises:
            BaseException: The error given to `fail`.
        """
        while not self._items:
            if self._error is not None:
                raise self._error
            if self._closed:
                return b""
            self._reader_wakeup = event = anyio.Event()
            await event.wait()
        chunk = self._items.popleft()
        self._held -= len(chunk)
        self._wake_writer()
        return chunk

    async def chunks(self) -> AsyncIterator[bytes | bytearray]:
        """Yield the chunks until the end (a byte source for `put`)."""
        while chunk := await self.receive():
            yield chunk


class PipeOutput(OutputStream):
    """An output whose bytes wait in a `Pipe` for a reader.

    `ready` is set when its metadata is final (or the transform failed first).
    """

    def __init__(self, *, transform: str, max_bytes: int = DEFAULT_PIPE_BYTES) -> None:
        super().__init__(transform=transform)
        self.pipe = Pipe(max_bytes)
        self.ready = anyio.Event()

    async def _start(self) -> None:
        self.ready.set()

    async def _write(self, data: bytes | bytearray) -> None:
        await self.pipe.send(data)

    async def _finish(self) -> None:
        self.pipe.close()

    def _fail(self, error: BaseException) -> None:
        super()._fail(error)
        self.pipe.fail(error)
        self.ready.set()


Consumer = Callable[
    [AsyncIterator["bytes | bytearray"], Mapping[str, str], "str | None"], Awaitable[Any]
]
"""Stores an output: called with its bytes, metadata and content type; returns a handle."""


class StoreOutput(PipeOutput):
    """An output stored by one atomic write that starts when its metadata is final.

    The write runs in the host's task group, fed from the pipe. If the transform fails, the
    pipe fails, so the write's source raises and the store keeps nothing (as every module
    does for a failing source). If the write fails on its own, `failure` holds its error and
    the transform's next write raises.
    """

    def __init__(
        self, consume: Consumer, group: TaskGroup, *, transform: str, key: str | None = None
    ) -> None:
        super().__init__(transform=transform)
        self._consume = consume
        self._group = group
        self.key = key
        """The key the output is stored under, when the caller chose one."""
        self.handle: Any = None
        """What the store's write returned (the handle), once it completed."""
        self.failure: BaseException | None = None
        """The store write's own error, if it failed (not when failed by the transform)."""
        self._injected: _WriteAborted | None = None
        self.done = anyio.Event()

    async def _start(self) -> None:
        await super()._start()
        self._group.start_soon(self._store)

    async def _store(self) -> None:
        try:
            self.handle = await self._consume(self.pipe.chunks(), self.metadata, self.content_type)
        except Exception as exc:
            if self._injected is None:  # its own failure, not the one the host caused
                self.failure = exc
                self.pipe.abandon(exc)
        finally:
            self.done.set()

    def _fail(self, error: BaseException) -> None:
        # The write's source raises a marker of its own: the error itself is the host's to
        # raise, once, in the caller's task.
        self._injected = _WriteAborted(f"transform {self.transform!r} failed: nothing stored")
        if not self._started:
            self._started = True
            self.done.set()  # no write was started: nothing to undo
        super()._fail(self._injected)


class _WriteAborted(Exception):
    """Raised into a store write whose transform failed, so that it stores nothing."""


class WritableOutput(OutputStream):
    """An output that goes to a caller's writable as it comes.

    Accepts an object with an async ``write(data)`` or ``send(data)`` (an anyio
    ``ByteSendStream``), or a binary file object with a blocking ``write`` (run in a worker
    thread). Bytes written before a failure have reached the writable: it is the caller's
    to discard them.
    """

    def __init__(self, writable: object, *, transform: str) -> None:
        super().__init__(transform=transform)
        self.writable = writable
        method = getattr(writable, "send", None)
        if not callable(method) or not inspect.iscoroutinefunction(method):
            method = getattr(writable, "write", None)
        if not callable(method):
            raise TypeError(
                f"cannot write a transform's output to a {type(writable).__name__}: give "
                "(store, key), or an object with an async write()/send() or a binary file"
            )
        self._method: Callable[[bytes | bytearray], Any] = method
        self._is_async = inspect.iscoroutinefunction(method)

    async def _write(self, data: bytes | bytearray) -> None:
        if self._is_async:
            await self._method(data)
            return
        result = await anyio.to_thread.run_sync(self._method, data)
        if inspect.isawaitable(result):
            self._is_async = True
            await result

    async def _finish(self) -> None:
        flush = getattr(self.writable, "flush", None)
        if callable(flush) and not self._is_async:
            await anyio.to_thread.run_sync(flush)


class CountingOutput(OutputStream):
    """An output that counts its bytes and drops them."""

    async def _write(self, data: bytes | bytearray) -> None:
        await anyio.lowlevel.checkpoint()
