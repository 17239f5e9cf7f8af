"""The streams a transform works on: `InputStream` to read, `OutputStream` to write.

An input is read sequentially (`read`, `readinto`, `receive`, async iteration), like a
`ReadStream` that cannot seek; its `info` describes the object. An output takes its metadata
and content type first, then bytes; every kind of output (a store key, a caller's stream, a
transformed read) implements the few hooks of `OutputStream`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

import anyio
from anyio.abc import ByteReceiveStream

from asyncstore.errors import TransformError
from asyncstore.keys import validate_content_type, validate_metadata
from asyncstore.streams import DEFAULT_CHUNK_SIZE, ReadStream, iter_source, source_length
from asyncstore.transforms._contract import InputInfo

if TYPE_CHECKING:
    from typing_extensions import Buffer, Self

__all__ = ["InputStream", "OutputStream"]

_EMPTY: Mapping[str, str] = MappingProxyType({})


class InputStream(ByteReceiveStream):
    """One input of a transform: a sequential stream of bytes with the object's `info`.

    Reads return ``b""`` at the end. Errors of the underlying stream or source are raised
    unchanged, and remembered (`failure`), so that the caller of the transform receives them
    as they are rather than as a failure of the transform.

    Build one with `from_read_stream` or `from_source`.
    """

    chunk_size: int = DEFAULT_CHUNK_SIZE
    """How many bytes `read()` without a size and async iteration ask for at a time."""

    def __init__(
        self,
        info: InputInfo,
        *,
        stream: ReadStream | None = None,
        chunks: AsyncIterator[bytes | bytearray | memoryview] | None = None,
        on_read: Callable[[int], None] | None = None,
        owned: bool = True,
    ) -> None:
        if (stream is None) == (chunks is None):
            raise TypeError("give exactly one of stream= and chunks=")
        self._info = info
        self._stream = stream
        self._chunks = chunks
        self._pending = memoryview(b"")
        self._pos = 0
        self._ended = False
        self._closed = False
        self._on_read = on_read
        self._owned = owned
        self.failure: BaseException | None = None
        """The error the underlying stream or source raised, if it did."""

    @classmethod
    def from_read_stream(
        cls,
        stream: ReadStream,
        *,
        store: str | None = None,
        on_read: Callable[[int], None] | None = None,
        owned: bool = True,
    ) -> InputStream:
        """Read an open `ReadStream` (from its current position).

        Closing the input closes the stream too, unless ``owned`` is False.
        """
        info = InputInfo.from_object(stream.info, store=store)
        if stream.size != info.size or stream.tell():
            info = InputInfo(
                info.key,
                stream.size - stream.tell(),
                info.content_type,
                info.metadata,
                info.etag,
                store,
            )
        return cls(info, stream=stream, on_read=on_read, owned=owned)

    @classmethod
    def from_source(
        cls,
        source: object,
        info: InputInfo | None = None,
        *,
        on_read: Callable[[int], None] | None = None,
    ) -> InputStream:
        """Read any byte source `put` accepts (bytes, iterables, readers, a `ReadStream`).

        A `TypeError` for a source of the wrong kind is raised by the first read.
        """
        if info is None:
            info = InputInfo(key=None, size=source_length(source))
        return cls(info, chunks=iter_source(source), on_read=on_read)

    @property
    def info(self) -> InputInfo:
        """What is known about the input: key, size, content type, metadata."""
        return self._info

    @property
    def size(self) -> int | None:
        """The number of bytes the input holds, or None when unknown."""
        return self._info.size

    def tell(self) -> int:
        """Return how many bytes have been read."""
        return self._pos

    def _check_open(self) -> None:
        if self._closed:
            raise anyio.ClosedResourceError

    def _count(self, count: int) -> None:
        self._pos += count
        if self._on_read is not None and count:
            self._on_read(count)

    async def _next_chunk(self) -> memoryview:
        """Return the pending bytes, or the next chunk of the source (empty at the end)."""
        if self._pending:
            return self._pending
        if self._ended or self._chunks is None:
            return memoryview(b"")
        try:
            chunk = await self._chunks.__anext__()
        except StopAsyncIteration:
            self._ended = True
            return memoryview(b"")
        except Exception as exc:
            self.failure = exc
            raise
        self._pending = memoryview(chunk).cast("B")
        return self._pending

    async def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes (everything that remains if ``n`` is negative)."""
        self._check_open()
        if n == 0:
            return b""
        if n is None or n < 0:
            parts = []
            while data := await self.read(self.chunk_size):
                parts.append(data)
            return b"".join(parts)
        if self._stream is not None:
            try:
                data = await self._stream.read(n)
            except Exception as exc:
                self.failure = exc
                raise
            self._count(len(data))
            return data
        chunk = await self._next_chunk()
        piece = chunk[:n]
        self._pending = chunk[len(piece) :]
        self._count(len(piece))
        whole = piece.obj
        if type(whole) is bytes and len(piece) == len(whole):
            return whole  # a whole bytes chunk: no copy
        return piece.tobytes()

    async def readinto(self, buffer: Buffer) -> int:
        """Read into a writable buffer; return how many bytes were read (0 at the end)."""
        self._check_open()
        view = memoryview(buffer).cast("B")
        if not len(view):
            return 0
        if self._stream is not None:
            try:
                count = await self._stream.readinto(view)
            except Exception as exc:
                self.failure = exc
                raise
            self._count(count)
            return count
        chunk = await self._next_chunk()
        count = min(len(chunk), len(view))
        view[:count] = chunk[:count]
        self._pending = chunk[count:]
        self._count(count)
        return count

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
        """Close the input (and the stream it reads); closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        self._pending = memoryview(b"")
        if self._stream is not None:
            if self._owned:
                await self._stream.aclose()
        elif self._chunks is not None:
            close = getattr(self._chunks, "aclose", None)
            if close is not None:
                await close()

    async def __aenter__(self) -> Self:
        return self

    def __repr__(self) -> str:
        return f"<InputStream key={self._info.key!r} size={self._info.size} pos={self._pos}>"


class OutputStream:
    """One output of a transform: metadata and content type first, then bytes.

    `set_metadata` may be called any number of times until the first `write` (or `aclose`);
    after that the output's metadata is fixed and calling it raises `TransformError`.
    Writes wait while the consumer is busy (back-pressure). An output is closed by the
    transform or, when it returns, by its host; writing to a closed output raises
    `TransformError`.

    Hosts subclass it and implement `_start` (the metadata is final), `_write` and
    `_finish` (every byte was written).
    """

    def __init__(self, *, transform: str = "transform") -> None:
        self.transform = transform
        """The name of the transform writing to this output (for error messages)."""
        self._metadata: Mapping[str, str] = _EMPTY
        self._content_type: str | None = None
        self._started = False
        self._closed = False
        self._written = 0

    # ---- what a transform calls ------------------------------------------------------------

    def set_metadata(
        self, metadata: Mapping[str, str] | None = None, *, content_type: str | None = None
    ) -> None:
        """Set the output's user metadata and content type; only before the first write.

        Each call replaces both: pass the input's ``info.metadata`` and ``info.content_type``
        to keep them.

        Raises:
            TransformError: If the output has been written to or closed.
            InvalidMetadataError: If the metadata or content type breaks the metadata rules.
        """
        if self._started:
            raise TransformError(
                f"transform {self.transform!r} set an output's metadata after writing to it; "
                "metadata and content type must come before the first write",
                transform=self.transform,
            )
        self._metadata = MappingProxyType(validate_metadata(metadata))
        self._content_type = validate_content_type(content_type)

    async def write(self, data: Buffer) -> None:
        """Write bytes, waiting while the consumer is busy.

        The bytes are copied unless they are `bytes`, so the caller may reuse its buffer.

        Raises:
            TransformError: If the output is closed.
            TypeError: If ``data`` is not bytes-like.
        """
        if self._closed:
            raise TransformError(
                f"transform {self.transform!r} wrote to a closed output", transform=self.transform
            )
        if isinstance(data, str):
            raise TypeError("outputs take bytes, not str: encode text first")
        chunk = data if type(data) is bytes else memoryview(data).cast("B").tobytes()
        await self._accept(chunk)

    async def _accept(self, chunk: bytes | bytearray) -> None:
        """Write a chunk the output may keep (the host's path: no copy)."""
        if self._closed:
            raise TransformError(
                f"transform {self.transform!r} wrote to a closed output", transform=self.transform
            )
        await self._ensure_started()
        if chunk:
            self._written += len(chunk)
            await self._write(chunk)

    async def aclose(self) -> None:
        """Mark the output complete; closing twice is harmless."""
        if self._closed:
            return
        await self._ensure_started()
        self._closed = True
        await self._finish()

    @property
    def metadata(self) -> Mapping[str, str]:
        """The metadata set so far."""
        return self._metadata

    @property
    def content_type(self) -> str | None:
        """The content type set so far."""
        return self._content_type

    @property
    def closed(self) -> bool:
        """Whether the output is complete."""
        return self._closed

    @property
    def started(self) -> bool:
        """Whether the metadata is fixed (the first write or the close happened)."""
        return self._started

    @property
    def bytes_written(self) -> int:
        """How many bytes were written."""
        return self._written

    # ---- what a host implements ------------------------------------------------------------

    async def _ensure_started(self) -> None:
        if not self._started:
            self._started = True
            await self._start()

    async def _start(self) -> None:
        """Called once, before the first byte, when the metadata is final."""

    async def _write(self, data: bytes | bytearray) -> None:
        """Deliver non-empty bytes to the consumer (never changed afterwards)."""
        raise NotImplementedError

    async def _finish(self) -> None:
        """Called once after the last byte when the output completes."""

    def _fail(self, error: BaseException) -> None:
        """Abandon the output: the transform failed; its consumer must store nothing."""
        self._closed = True

    def __repr__(self) -> str:
        state = "closed" if self._closed else "started" if self._started else "new"
        return f"<{type(self).__name__} {state} written={self._written}>"
