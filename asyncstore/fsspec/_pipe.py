"""`PutPipe`: one store `put` fed chunk by chunk, by a writer that lives across many calls.

An fsspec file is written by many separate ``write``/``flush`` calls, each a separate trip to
the event loop, while a store's `put` wants one byte source it can pull from. The pipe runs the
`put` as a task reading from a one-slot channel: each `send` waits until the put has taken the
previous chunk (so memory stays bounded by a couple of chunks), `finish` ends the source and
returns the put's handle, and `abort` makes the source fail, so the store keeps nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from asyncstore.module import Store

__all__ = ["PutPipe", "WriteAborted"]


class WriteAborted(Exception):
    """Raised into a pipe's byte source when its writer gives up, so the put stores nothing."""


class PutPipe:
    """A `put` in progress on the running event loop, fed through `send`.

    Args:
        store: The store to write to.
        key: The key to write.
        **put_options: More keywords for `put` (``overwrite``, ``content_type``...).
    """

    def __init__(self, store: Store, key: str, **put_options: Any) -> None:
        self._store = store
        self._key = key
        self._options = put_options
        self._aborted = False
        self._sender: MemoryObjectSendStream[bytes] | None = None
        self._task: asyncio.Task[str] | None = None

    async def start(self) -> None:
        """Start the put; it waits for the first chunk."""
        sender, receiver = anyio.create_memory_object_stream[bytes](1)
        self._sender = sender
        self._task = asyncio.ensure_future(self._run(receiver))

    async def _run(self, receiver: MemoryObjectReceiveStream[bytes]) -> str:
        async with receiver:
            return await self._store.put(self._source(receiver), key=self._key, **self._options)

    async def _source(self, receiver: MemoryObjectReceiveStream[bytes]) -> AsyncIterator[bytes]:
        async for chunk in receiver:
            yield chunk
        if self._aborted:
            raise WriteAborted("the file was discarded before it was closed")

    async def send(self, chunk: bytes) -> None:
        """Hand one chunk to the put, waiting while it is still busy with the previous one.

        Raises:
            Exception: Whatever made the put fail (an invalid key, a full store...).
        """
        assert self._sender is not None and self._task is not None, "start() first"
        try:
            await self._sender.send(chunk)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            # The put stopped reading: it failed, and its error is the one to report.
            await self._task
            raise
        if self._task.done():
            await self._task

    async def finish(self) -> str:
        """End the source and wait for the put; return the stored object's handle."""
        assert self._sender is not None and self._task is not None, "start() first"
        await self._sender.aclose()
        return await self._task

    def abort_soon(self) -> None:
        """Make the put fail without waiting, from any thread (for finalizers)."""
        task = self._task
        if task is None or task.done():
            return
        self._aborted = True

        def abort_on_loop() -> None:
            assert self._sender is not None
            self._sender.close()
            # Nobody will await the task: retrieve its WriteAborted so asyncio stays quiet.
            task.add_done_callback(lambda done: done.cancelled() or done.exception())

        loop = task.get_loop()
        if not loop.is_closed():
            loop.call_soon_threadsafe(abort_on_loop)

    async def abort(self) -> None:
        """Make the put fail and wait until it has cleaned up; nothing is stored."""
        if self._sender is None or self._task is None:
            return
        self._aborted = True
        await self._sender.aclose()
        # The put fails with WriteAborted, or had already failed: either way nothing was
        # stored, and the writer that gives up has no use for the reason.
        with contextlib.suppress(Exception):
            await self._task
