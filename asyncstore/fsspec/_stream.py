"""Read streams over the files of an fsspec filesystem, each reading one version of a file.

fsspec cannot name a version, so a stream pins one by holding an open file:

- `FileReadStream` holds a blocking filesystem's open file (a local file descriptor keeps the
  version it opened even when the file is replaced) and reads it in worker threads.
- `AsyncFileReadStream` holds an async filesystem's streamed file (one GET for s3fs), which
  it reads front to back; a read elsewhere fetches that range with ``cat_file``, which a
  concurrent replacement can change, since fsspec offers no conditional ranged read.

Filesystems that keep files in memory are read from a snapshot instead (`BytesReadStream`).
"""

from __future__ import annotations

import inspect
from typing import Any

import anyio
import anyio.to_thread

from asyncstore.fsspec._driver import FilesystemDriver, map_fs_errors
from asyncstore.info import ObjectInfo
from asyncstore.streams import ReadStream

__all__ = ["AsyncFileReadStream", "FileReadStream"]


class FileReadStream(ReadStream):
    """A stream over an open file of a blocking filesystem, read in worker threads.

    Args:
        file: The open binary file (closed with the stream).
        info: The object's description; its size is the file's.
        start: The first byte of the range.
        end: The end of the range (exclusive), or None for the end of the object.
    """

    def __init__(
        self, file: Any, info: ObjectInfo, store: str, *, start: int = 0, end: int | None = None
    ) -> None:
        super().__init__(info, start=start, end=end)
        self._file = file
        self._store = store
        self._position: int | None = None

    def _read_blocking(self, offset: int, max_bytes: int) -> bytes:
        if self._position != offset:
            self._file.seek(offset)
        data = bytes(self._file.read(max_bytes))
        self._position = offset + len(data)
        return data

    async def _read_at(self, offset: int, max_bytes: int) -> bytes:
        with map_fs_errors(self._store, self.info.handle):
            return await anyio.to_thread.run_sync(self._read_blocking, offset, max_bytes)

    async def _close(self) -> None:
        with anyio.CancelScope(shield=True), map_fs_errors(self._store, self.info.handle):
            await anyio.to_thread.run_sync(self._file.close)


class AsyncFileReadStream(ReadStream):
    """A stream over an async filesystem's streamed file, read in order.

    Args:
        driver: The filesystem, for reads away from the file's position.
        path: The file's path in the filesystem.
        file: The streamed file, positioned at byte 0 (closed with the stream).
        info: The object's description; its size is the streamed file's.
        start: The first byte of the range.
        end: The end of the range (exclusive), or None for the end of the object.
    """

    def __init__(
        self,
        driver: FilesystemDriver,
        path: str,
        file: Any,
        info: ObjectInfo,
        *,
        start: int = 0,
        end: int | None = None,
    ) -> None:
        super().__init__(info, start=start, end=end)
        self._driver = driver
        self._path = path
        self._file = file
        self._position = 0

    async def _read_at(self, offset: int, max_bytes: int) -> bytes:
        handle = self.info.handle
        if offset == self._position and self._file is not None:
            with map_fs_errors(self._driver.store, handle):
                data = bytes(await self._file.read(max_bytes))
            self._position += len(data)
            return data
        data = await self._driver.call(
            "cat_file", self._path, start=offset, end=offset + max_bytes, handle=handle
        )
        return bytes(data)

    async def _close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            with anyio.CancelScope(shield=True), map_fs_errors(self._driver.store, None):
                await file.close()
                # s3fs's streamed file leaves its response body to its owner.
                body = getattr(file, "r", None)
                if body is not None and callable(getattr(body, "close", None)):
                    closing = body.close()
                    if inspect.isawaitable(closing):
                        await closing
