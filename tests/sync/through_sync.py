"""An async module that drives a `SyncStore` from worker threads.

Running the async conformance suite on it checks the whole blocking API (every method, the
sync streams and listings, sources handed over from threads) without copying the suite.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread

from asyncstore import ObjectInfo, ReadStream, StorageModule
from asyncstore.sync import SyncReadStream, SyncStore


class _ThreadReadStream(ReadStream):
    def __init__(self, stream: SyncReadStream, *, start: int) -> None:
        super().__init__(stream.info, start=start, end=start + stream.size)
        self._sync = stream

    async def _read_at(self, offset: int, max_bytes: int) -> bytes:
        def read() -> bytes:
            self._sync.seek(offset - self._offset)
            return self._sync.read(max_bytes)

        return await anyio.to_thread.run_sync(read)

    async def _readinto_at(self, offset: int, buffer: memoryview) -> int:
        def readinto() -> int:
            self._sync.seek(offset - self._offset)
            return self._sync.readinto(buffer)

        return await anyio.to_thread.run_sync(readinto)

    async def _close(self) -> None:
        await anyio.to_thread.run_sync(self._sync.close)


class SyncBackedModule(StorageModule):
    """Every call goes through a `SyncStore` method, called in a worker thread."""

    def __init__(self, store: SyncStore) -> None:
        self.store = store
        self.name = store.name

    def _thread_source(self, source: Any, token: anyio.lowlevel.EventLoopToken) -> Any:
        """Turn async sources of the test's loop into sync ones a thread can read."""
        read = getattr(source, "read", None)
        if read is not None and inspect.iscoroutinefunction(read):

            class Reader:
                def read(self, n: int = -1) -> bytes:
                    return anyio.from_thread.run(read, n, token=token)

            return Reader()
        if hasattr(source, "__aiter__"):
            iterator = aiter(source)

            async def pull() -> Any:
                return await anext(iterator, None)

            def chunks() -> Iterator[Any]:
                while (chunk := anyio.from_thread.run(pull, token=token)) is not None:
                    yield chunk

            return chunks()
        return source

    async def put(
        self,
        source: Any,
        *,
        key: str | None = None,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str:
        token = anyio.lowlevel.current_token()
        return await anyio.to_thread.run_sync(
            lambda: self.store.put(
                self._thread_source(source, token),
                key=key,
                metadata=metadata,
                content_type=content_type,
                overwrite=overwrite,
                if_match=if_match,
            )
        )

    async def assign(
        self,
        handle: str,
        source: Any,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str | None:
        token = anyio.lowlevel.current_token()
        return await anyio.to_thread.run_sync(
            lambda: self.store.assign(
                handle,
                self._thread_source(source, token),
                metadata=metadata,
                content_type=content_type,
                overwrite=overwrite,
                if_match=if_match,
            )
        )

    async def new_data(self) -> str:
        return await anyio.to_thread.run_sync(self.store.new_data)

    async def available(self, handle: str) -> bool:
        return await anyio.to_thread.run_sync(self.store.available, handle)

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None, if_match: str | None = None
    ) -> ReadStream:
        stream = await anyio.to_thread.run_sync(
            lambda: self.store.get_read_stream(handle, start=start, end=end, if_match=if_match)
        )
        return _ThreadReadStream(stream, start=min(start, stream.info.size))

    async def get_size(self, handle: str) -> int:
        return await anyio.to_thread.run_sync(self.store.get_size, handle)

    async def stat(self, handle: str) -> ObjectInfo:
        return await anyio.to_thread.run_sync(self.store.stat, handle)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        listing = self.store.list(prefix)
        end = object()
        try:
            while (info := await anyio.to_thread.run_sync(next, listing, end)) is not end:
                yield info  # type: ignore[misc]
        finally:
            await anyio.to_thread.run_sync(listing.close)

    async def delete(self, handle: str, *, if_match: str | None = None) -> None:
        await anyio.to_thread.run_sync(lambda: self.store.delete(handle, if_match=if_match))

    async def copy(
        self,
        handle: str,
        *,
        key: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str:
        return await anyio.to_thread.run_sync(
            lambda: self.store.copy(handle, key=key, overwrite=overwrite, if_match=if_match)
        )

    async def statistics(self) -> dict[str, Any]:
        return await anyio.to_thread.run_sync(self.store.statistics)

    def capabilities(self) -> dict[str, Any]:
        return self.store.capabilities()

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.store.close)
