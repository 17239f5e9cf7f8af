"""The file objects of the ``asyncstore://`` filesystem, for blocking and for async callers.

Reading fetches byte ranges of the object through fsspec's caches (``readahead`` by default),
so a small read near the end (a parquet footer) costs one small ranged read, never the whole
object; fetches that follow on from the previous one are served by one stream that reads on
(one request for a file read front to back, its memory bounded by the fetch size). Where the
store honours ``if_match`` on reads, every range is fetched from the version the file opened,
and a replaced object raises `PreconditionFailedError` instead of mixing.

Writing streams into one store `put` through a `PutPipe`: memory stays bounded by a few
blocks, nothing is visible until the file is closed (or its transaction committed), and a file
left by an exception stores nothing: ``__exit__`` with an exception discards, and so does a
`close` that runs while an exception raised after the file was opened is propagating (the way
``fsspec.open`` and text wrappers close their files). A file collected unclosed is discarded.
So a file opened before an exception and closed by the handler of that exception is discarded
too; such code should close the file before it handles the exception.
"""

from __future__ import annotations

import io
import mimetypes
import sys
from typing import TYPE_CHECKING, Any

from fsspec.asyn import AbstractAsyncStreamedFile
from fsspec.spec import AbstractBufferedFile

from asyncstore.errors import UnsupportedError
from asyncstore.fsspec._pipe import PutPipe

if TYPE_CHECKING:
    from types import TracebackType

    from asyncstore.fsspec.filesystem import AsyncStoreFileSystem
    from asyncstore.streams import ReadStream

__all__ = ["StoreFile", "StoreStreamedFile", "guess_content_type"]

_WRITE_MODES = {"wb", "xb"}


def guess_content_type(key: str) -> str | None:
    """Return the MIME type a file name suggests (``text/csv`` for ``a.csv``), or None."""
    return mimetypes.guess_type(key, strict=False)[0]


def _check_mode(fs: AsyncStoreFileSystem, mode: str, path: str) -> None:
    if mode not in _WRITE_MODES and mode != "rb":
        raise UnsupportedError(
            f"mode {mode!r} is not supported: objects are written whole ('wb', 'xb') or read "
            "('rb'); appending or updating in place is not possible",
            handle=path,
        )


class _Writer:
    """What a file being written keeps: its pipe, its pending small body, its conditions."""

    def __init__(self, fs: AsyncStoreFileSystem, key: str, mode: str, content_type: str | None):
        self.fs = fs
        self.key = key
        self.options: dict[str, Any] = {"content_type": content_type or guess_content_type(key)}
        if mode == "xb":
            self.options["overwrite"] = False
        self.pipe: PutPipe | None = None
        self.pending: bytes | None = None


def _abandon(file: StoreFile | StoreStreamedFile) -> None:
    """Finalize a file the garbage collector found: never publish an unfinished write."""
    writer = getattr(file, "_writer", None)
    if writer is not None and writer.pipe is not None and not file.closed:
        writer.pipe.abort_soon()
    stream = getattr(file, "_stream", None)
    loop = getattr(getattr(file, "fs", None), "_loop", None)
    if stream is not None and loop is not None and not loop.is_closed():
        # Release the stream's connection on the loop it belongs to.
        loop.call_soon_threadsafe(lambda: loop.create_task(stream.aclose()))
    file.closed = True


class StoreFile(AbstractBufferedFile):  # type: ignore[misc]
    """A file of a store, for blocking code (``fs.open``); see the module docstring.

    Args:
        fs: The filesystem.
        path: The file's path (its key).
        mode: ``rb``, ``wb`` or ``xb`` (``xb`` fails if the file exists, atomically where the
            store has ``conditional_create``).
        block_size: Bytes fetched per read, and buffered per chunk sent while writing.
        autocommit: False defers publishing to `commit` (fsspec transactions).
        cache_type: The fsspec read cache (``readahead``, ``blockcache``, ``bytes``...).
        cache_options: Options of that cache.
        size: The file's size, if known (saves a `stat`).
        content_type: The content type to store; guessed from the name when omitted.
        **kwargs: Kept as fsspec files keep them.
    """

    def __init__(
        self,
        fs: AsyncStoreFileSystem,
        path: str,
        mode: str = "rb",
        block_size: int | str | None = "default",
        autocommit: bool = True,
        cache_type: str = "readahead",
        cache_options: dict[str, Any] | None = None,
        size: int | None = None,
        content_type: str | None = None,
        **kwargs: Any,
    ) -> None:
        self._writer: _Writer | None = None
        self._etag: str | None = None
        # Reading: where the next sequential fetch starts, and the stream that serves those.
        self._next = 0
        self._stream: ReadStream | None = None
        self._stream_at = 0
        _check_mode(fs, mode, path)
        if mode in _WRITE_MODES:
            self._writer = _Writer(fs, path, mode, content_type)
            if mode == "xb":
                fs._sync(fs._check_create, path)
        super().__init__(
            fs,
            path,
            mode=mode,
            block_size=block_size,
            autocommit=autocommit,
            cache_type=cache_type,
            cache_options=cache_options,
            size=size,
            **kwargs,
        )
        # The exception already propagating when the file was opened (a file written by an
        # except block): a close during another one means the code writing the file failed.
        self._in_flight = sys.exc_info()[1]
        if mode == "rb":
            details = self.details if size is None else {}
            if details.get("type", "file") != "file":
                raise IsADirectoryError(path)
            self._etag = details.get("ETag")

    # ---- reading ---------------------------------------------------------------------------

    def _fetch_range(self, start: int, end: int) -> bytes:
        fs: AsyncStoreFileSystem = self.fs
        sequential = start == self._next
        self._next = end
        if sequential:
            return fs._sync(self._read_on, start, end)  # type: ignore[no-any-return]
        return fs._sync(fs._read_range, self.path, start, end, self._etag)  # type: ignore[no-any-return]

    async def _read_on(self, start: int, end: int) -> bytes:
        """Read ``[start, end)`` from the stream that reads on from ``start``.

        The stream is opened there if there is none (a file read front to back is one read).
        """
        fs: AsyncStoreFileSystem = self.fs
        stream = self._stream
        if stream is None or self._stream_at != start:
            if stream is not None:
                await stream.aclose()
            self._stream = None
            stream = self._stream = await fs._open_stream(self.path, self._etag, start)
            self._stream_at = start
        buffer = bytearray(end - start)
        view = memoryview(buffer)
        filled = 0
        while filled < len(buffer):
            count = await stream.readinto(view[filled:])
            if count == 0:
                break
            filled += count
        del view
        del buffer[filled:]
        self._stream_at = start + filled
        return bytes(buffer)

    async def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.aclose()

    # ---- writing ---------------------------------------------------------------------------

    def _upload_chunk(self, final: bool = False) -> bool:
        writer = self._writer
        assert writer is not None
        fs: AsyncStoreFileSystem = self.fs
        data = self.buffer.getvalue()
        if final and writer.pipe is None:
            # The whole file fit in one block: one plain put, now or at commit.
            writer.pending = data
            if self.autocommit:
                self.commit()
            return True
        if writer.pipe is None:
            writer.pipe = PutPipe(fs._store_now(), writer.key, **writer.options)
            fs._sync(writer.pipe.start)
        if data:
            fs._sync(writer.pipe.send, data)
        if final and self.autocommit:
            self.commit()
        return True

    def commit(self) -> None:
        """Publish the written bytes (called by `close`, or by a transaction)."""
        writer = self._writer
        if writer is None:
            return
        fs: AsyncStoreFileSystem = self.fs
        if writer.pipe is not None:
            fs._sync(writer.pipe.finish)
        elif writer.pending is not None:
            fs._sync(fs._put_bytes, writer.key, writer.pending, writer.options)
        writer.pending = None

    def discard(self) -> None:
        """Throw the written bytes away: the store keeps nothing of them."""
        writer = self._writer
        if writer is None:
            return
        writer.pending = None
        self.buffer = io.BytesIO()
        pipe, writer.pipe = writer.pipe, None
        self.closed = True
        if pipe is not None:
            fs: AsyncStoreFileSystem = self.fs
            fs._sync(pipe.abort)

    def _failed_since_write(self) -> bool:
        current = sys.exc_info()[1]
        return current is not None and current is not self._in_flight

    def close(self) -> None:
        """Close the file; a written file is published unless its writer failed (see above)."""
        if self._writer is not None and not self.closed and self._failed_since_write():
            self.discard()
            return
        if self._stream is not None:
            fs: AsyncStoreFileSystem = self.fs
            fs._sync(self._close_stream)
        super().close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None and self._writer is not None:
            self.discard()
        else:
            self.close()

    def __del__(self) -> None:
        _abandon(self)


class StoreStreamedFile(AbstractAsyncStreamedFile):  # type: ignore[misc]
    """A file of a store for async code (``await fs.open_async(path, mode)``).

    Reading keeps one store stream open and moves it only when the caller seeks, so reading a
    file from start to end is one streamed request. Writing behaves as `StoreFile` does;
    ``async with`` discards the file when its body raises.
    """

    def __init__(
        self,
        fs: AsyncStoreFileSystem,
        path: str,
        mode: str = "rb",
        *,
        size: int | None = None,
        etag: str | None = None,
        block_size: int | None = None,
        content_type: str | None = None,
    ) -> None:
        self._writer: _Writer | None = None
        _check_mode(fs, mode, path)
        self._writer = _Writer(fs, path, mode, content_type) if mode in _WRITE_MODES else None
        self._etag = etag
        self._stream: ReadStream | None = None
        super().__init__(
            fs,
            path,
            mode=mode,
            block_size=block_size or fs.blocksize,
            cache_type="none",
            size=size,
        )

    async def _fetch_range(self, start: int, end: int) -> bytes:
        fs: AsyncStoreFileSystem = self.fs
        if self._stream is None:
            self._stream = await fs._open_stream(self.path, self._etag)
        if self._stream.tell() != start:
            await self._stream.seek(start)
        return await self._stream.read(end - start)

    async def _upload_chunk(self, final: bool = False) -> bool:
        writer = self._writer
        assert writer is not None
        fs: AsyncStoreFileSystem = self.fs
        data = self.buffer.getvalue()
        if final and writer.pipe is None:
            await fs._put_bytes(writer.key, data, writer.options)
            return True
        if writer.pipe is None:
            writer.pipe = PutPipe(await fs._store(), writer.key, **writer.options)
            await writer.pipe.start()
        if data:
            await writer.pipe.send(data)
        if final:
            await writer.pipe.finish()
        return True

    async def discard(self) -> None:
        """Throw the written bytes away: the store keeps nothing of them."""
        if self._writer is None or self.closed:  # type: ignore[has-type]
            return
        self.closed = True
        pipe, self._writer.pipe = self._writer.pipe, None
        if pipe is not None:
            await pipe.abort()

    async def close(self) -> None:
        """Close the file: publish what was written, or release the read stream."""
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.aclose()
        await super().close()

    def __del__(self) -> None:
        _abandon(self)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None and self._writer is not None:
            await self.discard()
        else:
            await self.close()
