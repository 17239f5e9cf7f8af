"""Reading objects: opening and describing them, and the `FileReadStream` over an open file.

Data already in the page cache is read in place, and only what is not cached is read in a
worker thread: ``readinto`` reads with ``RWF_NOWAIT``, which makes the kernel fail rather than
wait for the disk. ``read(n)`` must return new bytes, which ``os.pread`` makes without a second
copy but cannot do with ``RWF_NOWAIT``; so the last byte of the range is probed with it first
(readahead fills the cache in order, so a cached end means a cached range; the rare miss costs
one blocking read). Small objects (or ranges) are read whole when they are opened, so reading
them costs no further system call.
"""

from __future__ import annotations

import errno
import os
import stat
import weakref
from dataclasses import dataclass
from datetime import datetime, timezone

import anyio.to_thread

from asyncstore.errors import NotFoundError
from asyncstore.info import ObjectInfo
from asyncstore.streams import ReadStream
from asyncstore_fs._conditions import etag_of
from asyncstore_fs._errors import map_os_errors
from asyncstore_fs._layout import Layout, close_quietly
from asyncstore_fs._metadata import decode, read_sidecar, read_xattr

__all__ = ["FileReadStream", "Opened", "describe", "open_object"]

_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None)
_NOWAIT_UNSUPPORTED = {errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS}


@dataclass(frozen=True)
class Opened:
    """An object opened for reading."""

    info: ObjectInfo
    """What the object is."""
    fd: int
    """The open file, or -1 when ``data`` holds the whole requested range."""
    data: bytes | None
    """The requested range, read when opening, or None."""


def describe(key: str, status: os.stat_result, blob: bytes | None) -> ObjectInfo:
    """Build the `ObjectInfo` of an object from its status and stored metadata."""
    metadata, content_type = decode(blob)
    return ObjectInfo(
        handle=key,
        size=status.st_size,
        modified=datetime.fromtimestamp(status.st_mtime, timezone.utc),
        etag=etag_of(status),
        content_type=content_type,
        metadata=metadata,
    )


def open_object(
    layout: Layout,
    key: str,
    *,
    sidecar: bool,
    keep: bool = False,
    start: int = 0,
    end: int | None = None,
    eager: int = 0,
) -> Opened:
    """Open the object under ``key`` and describe it.

    Args:
        layout: The store's layout.
        key: The object's key.
        sidecar: Whether metadata is kept in sidecar files rather than extended attributes.
        keep: Keep the file open for reading (else only describe it).
        start: The start of the range to be read.
        end: The end of the range to be read (None: the end of the object).
        eager: Read the range at once, and close the file, when it is at most this long.

    Raises:
        NotFoundError: If there is no regular file under ``key``.
        PermissionDeniedError: If reaching it means following a symlink out of the root.
    """
    fd = layout.open_checked(key)
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):  # a directory is a prefix, not an object
            raise NotFoundError("no such object", handle=key)
        if sidecar:
            blob = read_sidecar(layout.path(key), status.st_ino)
        else:
            blob = read_xattr(fd)
        info = describe(key, status, blob)
        if not keep:
            os.close(fd)
            return Opened(info, -1, None)
        offset = min(start, status.st_size)
        stop = status.st_size if end is None else min(end, status.st_size)
        length = max(0, stop - offset)
        if length <= eager:
            data = os.pread(fd, length, offset) if length else b""
            os.close(fd)
            return Opened(info, -1, data)
        return Opened(info, fd, None)
    except BaseException:
        close_quietly(fd)
        raise


class FileReadStream(ReadStream):
    """A `ReadStream` over a file of the store, or over a small range read when opened."""

    def __init__(self, opened: Opened, *, start: int, end: int | None, store: str) -> None:
        super().__init__(opened.info, start=start, end=end)
        self._fd = opened.fd
        self._data = opened.data
        self._store = store
        self._nowait = _NOWAIT
        self._probe: memoryview | None = None
        # A stream that is dropped without aclose() still gives its descriptor back.
        self._release = weakref.finalize(self, close_quietly, self._fd) if self._fd >= 0 else None

    async def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes (all that remain if ``n`` is negative); b"" at the end."""
        data = self._data
        if data is None or self.closed:
            return await super().read(n)
        # The range is in memory already: slice it rather than copy it through a buffer.
        remaining = self.size - self._pos
        count = remaining if n is None or n < 0 else min(n, remaining)
        if count <= 0:
            return b""
        start = self._pos
        chunk = data if start == 0 and count >= len(data) else data[start : start + count]
        self._pos += len(chunk)
        return chunk

    def _cached(self, offset: int, length: int) -> bool:
        """Return whether the last byte of ``[offset, offset + length)`` is in the page cache.

        Readahead fills the cache in order, so this is a cheap and good sign that the range
        can be read without waiting for the disk.
        """
        if self._nowait is None:
            return False
        if self._probe is None:
            self._probe = memoryview(bytearray(1))
        try:
            os.preadv(self._fd, [self._probe], offset + length - 1, self._nowait)
        except BlockingIOError:
            return False
        except OSError as exc:
            if exc.errno not in _NOWAIT_UNSUPPORTED:
                raise
            self._nowait = None
            return False
        return True

    async def _read_at(self, offset: int, max_bytes: int) -> bytes:
        if self._data is not None:
            index = offset - self._offset
            return self._data[index : index + max_bytes]
        with map_os_errors(store=self._store, handle=self.info.handle):
            if self._cached(offset, max_bytes):
                return os.pread(self._fd, max_bytes, offset)
            return await anyio.to_thread.run_sync(os.pread, self._fd, max_bytes, offset)

    async def _readinto_at(self, offset: int, buffer: memoryview) -> int:
        if self._data is not None:
            index = offset - self._offset
            chunk = self._data[index : index + len(buffer)]
            buffer[: len(chunk)] = chunk
            return len(chunk)
        with map_os_errors(store=self._store, handle=self.info.handle):
            if self._nowait is not None:
                try:
                    return os.preadv(self._fd, [buffer], offset, self._nowait)
                except BlockingIOError:
                    pass
                except OSError as exc:
                    if exc.errno not in _NOWAIT_UNSUPPORTED:
                        raise
                    self._nowait = None
            return await anyio.to_thread.run_sync(os.preadv, self._fd, [buffer], offset)

    async def _close(self) -> None:
        self._data = None
        if self._release is not None:
            self._release()
