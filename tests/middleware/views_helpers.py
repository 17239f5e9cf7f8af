"""Stores the view middleware tests watch: every key they are asked about is recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from asyncstore.info import ObjectInfo
from asyncstore.memory import MemoryModule
from asyncstore.module import StorageModule
from asyncstore.streams import ByteSource, BytesReadStream, ReadStream, iter_source


class RecordingModule(MemoryModule):
    """A memory module that records each call as ``(method, key or prefix)``."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.calls: list[tuple[str, object]] = []

    async def put(self, source: ByteSource, *, key: str | None = None, **kwargs: Any) -> str:
        self.calls.append(("put", key))
        return await super().put(source, key=key, **kwargs)

    async def assign(self, handle: str, source: ByteSource, **kwargs: Any) -> str:
        self.calls.append(("assign", handle))
        return await super().assign(handle, source, **kwargs)

    async def new_data(self) -> str:
        self.calls.append(("new_data", None))
        return await super().new_data()

    async def get_read_stream(self, handle: str, **kwargs: Any) -> ReadStream:
        self.calls.append(("get_read_stream", handle))
        return await super().get_read_stream(handle, **kwargs)

    async def stat(self, handle: str) -> ObjectInfo:
        self.calls.append(("stat", handle))
        return await super().stat(handle)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        self.calls.append(("list", prefix))
        async for info in super().list(prefix):
            yield info

    async def delete(self, handle: str, **kwargs: Any) -> None:
        self.calls.append(("delete", handle))
        await super().delete(handle, **kwargs)

    async def copy(self, handle: str, *, key: str | None = None, **kwargs: Any) -> str:
        self.calls.append(("copy", handle))
        return await super().copy(handle, key=key, **kwargs)

    async def cleanup(self, *, older_than: float = 3600.0) -> dict[str, int]:
        self.calls.append(("cleanup", None))
        return {"leftovers": 0}

    def keys(self) -> list[str]:
        """Every key stored."""
        return sorted(self._objects)


class TrustingModule(StorageModule):
    """A store that applies no key rules at all, as a broken backend might: it records every
    key it is asked about and stores under whatever it is given."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.seen: list[str] = []

    async def assign(self, handle: str, source: ByteSource, **kwargs: Any) -> None:
        self.seen.append(handle)
        self.objects[handle] = b"".join([bytes(chunk) async for chunk in iter_source(source)])

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None
    ) -> ReadStream:
        info = await self.stat(handle)
        return BytesReadStream(self.objects[handle], info, start=start, end=end)

    async def stat(self, handle: str) -> ObjectInfo:
        self.seen.append(handle)
        if handle not in self.objects:
            raise self._not_found(handle)
        return ObjectInfo(handle, len(self.objects[handle]))

    async def delete(self, handle: str) -> None:
        self.seen.append(handle)
        self.objects.pop(handle, None)


class PresigningModule(MemoryModule):
    """A memory module that "presigns" URLs naming the method and key."""

    async def presign(self, handle: str, *, method: str = "GET", expires: int = 3600) -> str:
        return f"https://example.invalid/{handle}?method={method}&expires={expires}"


async def put_all(store: MemoryModule, objects: Mapping[str, bytes]) -> None:
    """Store each object under its key."""
    for key, data in objects.items():
        await store.put(data, key=key)
