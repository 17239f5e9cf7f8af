"""An example asyncstore backend that keeps objects in a dict."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timezone

from asyncstore import ObjectInfo, ReadStream, StorageModule
from asyncstore.keys import validate_content_type, validate_key, validate_metadata, validate_prefix
from asyncstore.streams import ByteSource, BytesReadStream, check_range, iter_source


class DictStore(StorageModule):
    """Keeps objects in a dict, for examples and tests.

    Args:
        label: A free-form label, to show how options reach the constructor.
    """

    name = "dict"

    def __init__(self, *, label: str = "") -> None:
        self.label = label
        self._objects: dict[str, tuple[bytes, ObjectInfo]] = {}

    async def assign(
        self,
        handle: str,
        source: ByteSource,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> None:
        # Check everything before reading the source: bad input stores nothing.
        validate_key(handle, store=self.name)
        meta = validate_metadata(metadata, store=self.name)
        ctype = validate_content_type(content_type, store=self.name)
        data = b"".join([bytes(chunk) async for chunk in iter_source(source)])
        info = ObjectInfo(
            handle, len(data), datetime.now(timezone.utc), str(hash(data)), ctype, meta
        )
        # Publish in one step, so readers see the old object or the new one.
        self._objects[handle] = (data, info)

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None
    ) -> ReadStream:
        check_range(start, end, store=self.name)
        data, info = self._lookup(handle)
        return BytesReadStream(data, info, start=start, end=end)

    async def stat(self, handle: str) -> ObjectInfo:
        return self._lookup(handle)[1]

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        validate_prefix(prefix, store=self.name)
        for key in sorted(k for k in self._objects if k.startswith(prefix)):
            if key in self._objects:
                yield self._objects[key][1]

    async def delete(self, handle: str) -> None:
        validate_key(handle, store=self.name)
        self._objects.pop(handle, None)

    def _lookup(self, handle: str) -> tuple[bytes, ObjectInfo]:
        validate_key(handle, store=self.name)
        if handle not in self._objects:
            raise self._not_found(handle)
        return self._objects[handle]
