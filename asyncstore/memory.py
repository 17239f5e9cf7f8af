"""The memory module: the reference implementation of the contract, keeping objects in RAM."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar

from asyncstore.errors import (
    AlreadyExistsError,
    ConfigError,
    PreconditionFailedError,
    StorageFullError,
)
from asyncstore.info import Handle, ObjectInfo
from asyncstore.keys import (
    validate_content_type,
    validate_key,
    validate_metadata,
    validate_prefix,
)
from asyncstore.module import StorageModule, check_conditions
from asyncstore.streams import ByteSource, BytesReadStream, ReadStream, check_range, iter_source

__all__ = ["MemoryModule"]


_COPY_BELOW = 1 << 20
"""Objects up to this size are stored as exact-size `bytes`; larger ones keep the buffer they
were gathered in (up to an eighth larger than needed) rather than pay a second copy."""


@dataclass(frozen=True)
class _Entry:
    data: bytes | bytearray  # never changed once stored
    info: ObjectInfo


class MemoryModule(StorageModule):
    """Keeps objects in this process's memory; fast, keyed, and gone when the process exits.

    Every write builds the complete object before publishing it in one step, so concurrent
    readers always see a whole object, and an open read stream keeps the bytes it started with.

    Args:
        max_bytes: The capacity in bytes; a write that would exceed it raises
            `StorageFullError`. None means unlimited. It counts the objects' bytes; a large
            object streamed in may take up to an eighth more (the buffer it grew in).
    """

    name = "memory"
    CAPABILITIES: ClassVar[Mapping[str, Any]] = {
        "cdmi_encryption": [],
        "conditional_create": True,
        "conditional_replace": True,
        "conditional_delete": True,
        "conditional_read": True,
    }

    def __init__(self, *, max_bytes: int | None = None) -> None:
        if max_bytes is not None and (not isinstance(max_bytes, int) or max_bytes < 0):
            raise ConfigError(f"max_bytes must be an int >= 0 or None, not {max_bytes!r}")
        self._max_bytes = max_bytes
        self._objects: dict[str, _Entry] = {}
        self._used = 0

    async def assign(
        self,
        handle: str,
        source: ByteSource,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str:
        """Store the bytes of ``source`` under ``handle``; return the new etag."""
        validate_key(handle, store=self.name)
        check_conditions(overwrite, if_match, store=self.name)
        meta = validate_metadata(metadata, store=self.name)
        ctype = validate_content_type(content_type, store=self.name)
        data = await self._gather(handle, source)
        # Nothing is awaited from here on: the check and the swap are atomic for every task.
        self._check_condition(handle, overwrite, if_match)
        self._check_room(handle, len(data))
        info = ObjectInfo(
            handle=handle,
            size=len(data),
            modified=datetime.now(timezone.utc),
            # A new tag for every write: hashing the bytes would cost several times the copy.
            etag=os.urandom(16).hex(),
            content_type=ctype,
            metadata=meta,
        )
        self._publish(handle, _Entry(data, info))
        return info.etag  # type: ignore[return-value]

    def _check_condition(self, handle: str, overwrite: bool, if_match: str | None) -> None:
        if overwrite and if_match is None:
            return
        current = self._objects.get(handle)
        if not overwrite and current is not None:
            raise AlreadyExistsError(
                "an object exists under this key", store=self.name, handle=handle
            )
        if if_match is not None and (current is None or current.info.etag != if_match):
            raise PreconditionFailedError(
                "the object is not the version if_match names"
                if current is not None
                else "no object exists for if_match to match",
                store=self.name,
                handle=handle,
            )

    async def _gather(self, handle: str, source: ByteSource) -> bytes | bytearray:
        """Return the bytes of ``source`` as one object that nothing else can change.

        A `bytes` source is kept as it is; any other is copied once, into a buffer that grows
        in place (a large one is kept as that buffer, never copied again or changed).
        """
        if type(source) is bytes:
            self._check_room(handle, len(source))
            return source
        if isinstance(source, (bytearray, memoryview)) and memoryview(source).c_contiguous:
            view = memoryview(source).cast("B")  # a known length: one exact copy
            self._check_room(handle, view.nbytes)
            return bytes(view) if view.nbytes <= _COPY_BELOW else bytearray(view)
        buffer = bytearray()
        async for chunk in iter_source(source):
            buffer += chunk
            self._check_room(handle, len(buffer))
        return bytes(buffer) if len(buffer) <= _COPY_BELOW else buffer

    def _check_room(self, handle: str, size: int) -> None:
        if self._max_bytes is None:
            return
        old = self._objects.get(handle)
        if self._used - (old.info.size if old else 0) + size > self._max_bytes:
            raise StorageFullError(
                f"storing {size} bytes would exceed the capacity of {self._max_bytes} bytes",
                store=self.name,
                handle=handle,
            )

    def _publish(self, handle: str, entry: _Entry) -> None:
        old = self._objects.get(handle)
        self._used += entry.info.size - (old.info.size if old else 0)
        self._objects[handle] = entry

    def _entry(self, handle: str) -> _Entry:
        validate_key(handle, store=self.name)
        entry = self._objects.get(handle)
        if entry is None:
            raise self._not_found(handle)
        return entry

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None, if_match: str | None = None
    ) -> ReadStream:
        """Open a stream of the object's bytes in ``[start, end)``.

        The stream keeps the version it opened, whatever writes follow.
        """
        check_range(start, end, store=self.name)
        check_conditions(if_match=if_match, store=self.name)
        entry = self._entry(handle)
        if if_match is not None and entry.info.etag != if_match:
            raise PreconditionFailedError(
                "the object is not the version if_match names", store=self.name, handle=handle
            )
        return BytesReadStream(entry.data, entry.info, start=start, end=end)

    async def stat(self, handle: str) -> ObjectInfo:
        """Describe the object."""
        return self._entry(handle).info

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Yield the objects whose keys start with ``prefix``, in key order."""
        validate_prefix(prefix, store=self.name)
        for key in sorted(k for k in self._objects if k.startswith(prefix)):
            entry = self._objects.get(key)
            if entry is not None:  # it may have been deleted while we were suspended
                yield entry.info

    async def delete(self, handle: str, *, if_match: str | None = None) -> None:
        """Delete the object; a missing one is not an error (unless ``if_match`` is given)."""
        validate_key(handle, store=self.name)
        if if_match is not None:
            check_conditions(if_match=if_match, store=self.name)
            self._check_condition(handle, True, if_match)
        old = self._objects.pop(handle, None)
        if old is not None:
            self._used -= old.info.size

    async def copy(
        self,
        handle: str,
        *,
        key: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str:
        """Copy the object without copying its bytes (they are immutable)."""
        check_conditions(overwrite, if_match, store=self.name)
        target = validate_key(key, store=self.name) if key is not None else await self.new_data()
        entry = self._entry(handle)
        self._check_condition(target, overwrite, if_match)
        self._check_room(target, entry.info.size)
        info = ObjectInfo(
            handle=target,
            size=entry.info.size,
            modified=datetime.now(timezone.utc),
            etag=entry.info.etag,
            content_type=entry.info.content_type,
            metadata=entry.info.metadata,
        )
        self._publish(target, _Entry(entry.data, info))
        return Handle(target, info.etag)

    async def statistics(self) -> dict[str, Any]:
        """Return capacity (``max_bytes``, bytes held, what is left) and object counts."""
        total = self._max_bytes
        return {
            "capacity": {
                "total": total,
                "used": self._used,
                "free": None if total is None else total - self._used,
            },
            "objects": len(self._objects),
            "bytes": self._used,
        }

    async def aclose(self) -> None:
        """Drop every object."""
        self._objects.clear()
        self._used = 0
