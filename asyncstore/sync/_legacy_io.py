"""Blocking I/O between legacy code and the event loop: its streams and the callers' sources.

`SourceReader` is the blocking file a legacy ``put``/``assign`` reads the caller's (async)
bytes from; `LegacyReadStream` is an async `ReadStream` over the blocking file a legacy
``get_read_stream`` returns, read in worker threads.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from asyncstore.errors import IntegrityError
from asyncstore.info import ObjectInfo
from asyncstore.streams import ReadStream
from asyncstore.sync._context import ThreadRunner

if TYPE_CHECKING:
    from typing_extensions import Buffer

    from asyncstore.sync._legacy import LegacyModule

__all__ = [
    "LegacyReadStream",
    "SourceReader",
    "close_raw",
    "measure",
    "open_measured",
    "seekable",
]

_SKIP_CHUNK = 1 << 20


def seekable(raw: Any) -> bool:
    """Return whether a legacy stream can seek (its ``seekable()``, else having ``seek``)."""
    method = getattr(raw, "seekable", None)
    if callable(method):
        return bool(method())
    return callable(getattr(raw, "seek", None))


async def _next_chunk(chunks: AsyncIterator[bytes | memoryview]) -> bytes | memoryview | None:
    return await anext(chunks, None)


class SourceReader(io.RawIOBase):
    """The blocking file a legacy ``put``/``assign`` reads the caller's bytes from."""

    def __init__(
        self, chunks: AsyncIterator[bytes | memoryview], first: bytes | memoryview | None
    ) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = memoryview(b"") if first is None else memoryview(first).cast("B")
        self._done = first is None
        self._runner = ThreadRunner()
        self.error: Exception | None = None
        """What the source raised, to re-raise unchanged whatever the legacy code does."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Buffer) -> int:
        view = memoryview(buffer).cast("B")
        if self.error is not None:
            raise self.error
        if not self._pending:
            if self._done:
                return 0
            try:
                chunk = self._runner.call(_next_chunk, self._chunks)
            except Exception as exc:
                self.error = exc
                raise
            if chunk is None:
                self._done = True
                return 0
            self._pending = memoryview(chunk).cast("B")
        count = min(len(view), len(self._pending))
        view[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count


class LegacyReadStream(ReadStream):
    """A `ReadStream` over a legacy module's blocking stream, read in worker threads."""

    def __init__(
        self, owner: LegacyModule, raw: Any, info: ObjectInfo, *, start: int, end: int | None
    ) -> None:
        super().__init__(info, start=start, end=end)
        self._owner = owner
        self._raw = raw
        self._raw_pos = 0

    async def _read_at(self, offset: int, max_bytes: int) -> bytes:
        return await self._owner._in_thread(
            self._owner._streams, "read", self._info.handle, self._read_sync, offset, max_bytes
        )

    def _read_sync(self, offset: int, max_bytes: int) -> bytes:
        if self._raw_pos != offset:
            self._move(offset)
        data = self._raw.read(max_bytes)
        if not data:
            raise IntegrityError(
                f"the legacy stream ended at byte {offset} of {self._info.size}",
                store=self._owner.name,
                handle=self._info.handle,
            )
        self._raw_pos += len(data)
        return bytes(data)

    def _move(self, offset: int) -> None:
        if seekable(self._raw):
            self._raw.seek(offset)
            self._raw_pos = offset
            return
        if offset < self._raw_pos:  # not seekable: start again and skip forward
            close_raw(self._raw)
            self._raw = self._owner._open_sync(self._info.handle)
            self._raw_pos = 0
        while self._raw_pos < offset:
            skipped = self._raw.read(min(_SKIP_CHUNK, offset - self._raw_pos))
            if not skipped:
                raise IntegrityError(
                    f"the legacy stream ended at byte {self._raw_pos} of {self._info.size}",
                    store=self._owner.name,
                    handle=self._info.handle,
                )
            self._raw_pos += len(skipped)

    async def _close(self) -> None:
        await self._owner._in_thread(
            self._owner._streams, "close", self._info.handle, close_raw, self._raw
        )


def close_raw(raw: Any) -> None:
    """Close a legacy stream (or module) if it has a ``close()``."""
    close = getattr(raw, "close", None)
    if callable(close):
        close()


def measure(raw: Any) -> int:
    """Return the size of a legacy stream by seeking to its end, or by reading it through.

    A seekable stream is left at offset 0. Its ``seek`` should return the new position, as
    files do; one that returns None is asked ``tell()``, or else read through.
    """
    if seekable(raw):
        end = raw.seek(0, 2)
        if not isinstance(end, int):
            tell = getattr(raw, "tell", None)
            end = tell() if callable(tell) else None
        raw.seek(0)
        if isinstance(end, int):
            return end
    total = 0
    while chunk := raw.read(_SKIP_CHUNK):
        total += len(chunk)
    if seekable(raw):
        raw.seek(0)
    return total


def open_measured(open_sync: Callable[[str], Any], handle: str) -> tuple[Any, int]:
    """Open a legacy stream with ``open_sync(handle)`` and measure it; return it at offset 0.

    For modules without ``get_size``: a seekable stream is measured by seeking, so the object
    is opened once; one that cannot seek is read through and opened again.
    """
    raw = open_sync(handle)
    try:
        size = measure(raw)
        if not seekable(raw):
            close_raw(raw)
            raw = open_sync(handle)
    except BaseException:
        close_raw(raw)
        raise
    return raw, size
