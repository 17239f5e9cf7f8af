"""Helpers shared by the middleware tests."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator, Mapping

from asyncstore.memory import MemoryModule
from asyncstore.module import StorageModule
from asyncstore.streams import ByteSource, ReadStream


async def read(module: StorageModule, handle: str, **kwargs: int) -> bytes:
    """The bytes of ``handle`` (in ``[start, end)`` when given) through ``module``."""
    async with await module.get_read_stream(handle, **kwargs) as stream:
        return await stream.read()


async def in_pieces(data: bytes, sizes: list[int]) -> AsyncIterator[bytearray]:
    """``data`` as a source cut into pieces of ``sizes``, each in a buffer of its own."""
    at = 0
    for size in sizes:
        yield bytearray(data[at : at + size])
        at += size


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


class CountingModule(MemoryModule):
    """A memory module that counts the bytes read through its streams and logs each read."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes_read = 0
        self.reads = 0
        self.log: list[tuple[int, int]] = []
        """Each read's ``(offset, bytes read)``, in order."""

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None
    ) -> ReadStream:
        stream = await super().get_read_stream(handle, start=start, end=end)
        original = stream._read_at
        original_into = stream._readinto_at
        original_view = stream._view_at

        async def read_at(offset: int, max_bytes: int) -> bytes:
            data = await original(offset, max_bytes)
            self._count(offset, len(data))
            return data

        async def readinto_at(offset: int, buffer: memoryview) -> int:
            count = await original_into(offset, buffer)
            self._count(offset, count)
            return count

        def view_at(offset: int, count: int) -> memoryview | None:
            view = original_view(offset, count)
            if view is not None:
                self._count(offset, len(view))
            return view

        stream._read_at = read_at  # type: ignore[method-assign]
        stream._readinto_at = readinto_at  # type: ignore[method-assign]
        stream._view_at = view_at  # type: ignore[method-assign]
        return stream

    def _count(self, offset: int, count: int) -> None:
        self.bytes_read += count
        self.reads += 1
        self.log.append((offset, count))

    def raw(self, handle: str) -> bytes:
        return self._objects[handle].data

    async def poke(self, handle: str, data: bytes) -> None:
        """Replace the stored bytes, keeping metadata (tampering with the inner store)."""
        info = self._objects[handle].info
        await MemoryModule.assign(
            self, handle, data, metadata=info.metadata, content_type=info.content_type
        )


class FailingWrites(MemoryModule):
    def __init__(self) -> None:
        super().__init__()
        self.fail = False

    async def assign(
        self,
        handle: str,
        source: ByteSource,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> None:
        if self.fail:
            raise OSError("replica is down")
        await super().assign(handle, source, metadata=metadata, content_type=content_type)


__all__ = ["CountingModule", "FailingWrites", "StorageModule", "new_key"]
