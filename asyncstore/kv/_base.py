"""The contract built from four key-value operations: what both simple-store bases share.

The two public bases say how the author's hooks (``_get``, ``_set``, ``_delete``, ``_scan``,
``_open``, ``_close``) are called, awaited or in worker threads, and `HookCaller` calls them;
this class turns them into the whole `StorageModule` contract: validation, conditions, streams,
listing, copy, statistics and capabilities.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, ClassVar

from asyncstore.errors import (
    AlreadyExistsError,
    PreconditionFailedError,
    StorageError,
    StorageFullError,
)
from asyncstore.info import Handle, ObjectInfo
from asyncstore.keys import validate_content_type, validate_key, validate_metadata, validate_prefix
from asyncstore.kv._hooks import HookCaller
from asyncstore.kv._record import (
    READ_AHEAD,
    Expected,
    KeyValueReadStream,
    decode_record,
    encode_record,
    new_etag,
)
from asyncstore.streams import ByteSource, ReadStream, check_range, iter_source, source_length

__all__ = ["KeyValueBase"]


def _takes_expected(hook: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(hook).parameters
    except (TypeError, ValueError):  # pragma: no cover - a builtin or odd callable
        return False
    return "expected" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


class KeyValueBase(HookCaller):
    """The machinery of `KeyValueModule` and `BlockingKeyValueModule`; not subclassed directly.

    Class attributes a subclass may set:
        max_object_size: The largest value `put` gathers, in bytes (values are stored whole,
            so they are held in memory once); None for no limit.
    """

    max_object_size: int | None = 64 << 20

    # Set per class from the author's hooks: whether `_set`/`_delete` take ``expected``.
    _conditional_set: ClassVar[bool] = False
    _conditional_delete: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for hook, flag in (("_set", "_conditional_set"), ("_delete", "_conditional_delete")):
            function = getattr(cls, hook, None)
            if function is not None and not getattr(function, "__isabstractmethod__", False):
                setattr(cls, flag, _takes_expected(function))

    async def _kv_whole(self, key: str) -> tuple[str, bytes]:
        """Return the record and the whole value of one version of the object.

        Raises:
            NotFoundError: If there is no object.
            PreconditionFailedError: If it was replaced between reads three times running.
        """
        for _ in range(3):
            found = await self._kv_get(key, 0, READ_AHEAD)
            if found is None:
                raise self._not_found(key)
            record, value = found
            size = decode_record(key, record, store=self.name).size
            if len(value) >= size:
                return record, value
            rest = await self._kv_get(key, len(value), size)
            if rest is not None and rest[0] == record:
                return record, value + rest[1]
        raise PreconditionFailedError(
            "the object kept changing while it was read", store=self.name, handle=key
        )

    # ---- writing ---------------------------------------------------------------------------

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
        """Store the bytes of ``source`` under ``handle`` with one `_set`; return the etag."""
        validate_key(handle, store=self.name)
        self._write_conditions(overwrite, if_match)
        meta = validate_metadata(metadata, store=self.name)
        ctype = validate_content_type(content_type, store=self.name)
        self._kv_check_open()
        value = await self._kv_gather(handle, source)
        etag = new_etag()
        record = encode_record(len(value), ctype, meta, etag=etag)
        await self._kv_store(handle, value, record, overwrite, if_match)
        return etag

    async def _kv_gather(self, handle: str, source: ByteSource) -> bytes:
        """Return the bytes of ``source``, refusing more than `max_object_size`."""
        limit = self.max_object_size
        known = source_length(source)
        if limit is not None and known is not None and known > limit:
            raise self._kv_too_large(handle, known)
        if type(source) is bytes:
            return source
        if isinstance(source, (bytearray, memoryview)) and memoryview(source).c_contiguous:
            return bytes(memoryview(source).cast("B"))  # one exact copy
        buffer = bytearray()
        async for chunk in iter_source(source):
            buffer += chunk
            if limit is not None and len(buffer) > limit:
                raise self._kv_too_large(handle, len(buffer))
        return bytes(buffer)

    def _kv_too_large(self, handle: str, size: int) -> StorageFullError:
        return StorageFullError(
            f"the object is {size} bytes or more; this store takes at most "
            f"{self.max_object_size} (capabilities()['max_object_size'])",
            store=self.name,
            handle=handle,
        )

    async def _kv_store(
        self, key: str, value: bytes, record: str, overwrite: bool, if_match: str | None
    ) -> None:
        """Write one version, deciding its conditions atomically in the author's `_set`."""
        if overwrite and if_match is None:
            await self._kv_write("_set", key, value, record, expected=None)
        elif not overwrite:
            if not await self._kv_write("_set", key, value, record, expected=Expected(None)):
                raise AlreadyExistsError(
                    "an object exists under this key", store=self.name, handle=key
                )
        else:
            current = await self._kv_matching(key, if_match)
            if not await self._kv_write("_set", key, value, record, expected=Expected(current)):
                raise self._kv_changed(key)

    async def _kv_matching(self, key: str, if_match: str | None) -> str:
        """Return the key's current record if its etag is ``if_match``.

        Raises:
            PreconditionFailedError: If there is no object or its etag differs.
        """
        current = await self._kv_current(key)
        if current is None:
            raise PreconditionFailedError(
                "no object exists for if_match to match", store=self.name, handle=key
            )
        if decode_record(key, current, store=self.name).etag != if_match:
            raise PreconditionFailedError(
                "the object is not the version if_match names", store=self.name, handle=key
            )
        return current

    def _kv_changed(self, key: str) -> PreconditionFailedError:
        return PreconditionFailedError(
            "the object was replaced by another writer before this one could",
            store=self.name,
            handle=key,
        )

    async def copy(
        self,
        handle: str,
        *,
        key: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str:
        """Copy the object, metadata and content type included, with one `_get` and one `_set`."""
        self._write_conditions(overwrite, if_match)
        validate_key(handle, store=self.name)
        target = validate_key(key, store=self.name) if key is not None else await self.new_data()
        record, value = await self._kv_whole(handle)
        info = decode_record(handle, record, store=self.name)
        etag = new_etag()
        copied = encode_record(len(value), info.content_type, info.metadata, etag=etag)
        await self._kv_store(target, value, copied, overwrite, if_match)
        return Handle(target, etag)

    # ---- reading ---------------------------------------------------------------------------

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None, if_match: str | None = None
    ) -> ReadStream:
        """Open a stream of the object's bytes in ``[start, end)``, read in ranges by `_get`.

        The first MiB comes with the record in one call; a stream that finds its version
        replaced later raises `PreconditionFailedError`, and one that finds it deleted
        `NotFoundError`.
        """
        check_range(start, end, store=self.name)
        validate_key(handle, store=self.name)
        self._check_read_condition(if_match)
        stop = start + READ_AHEAD if end is None else min(end, start + READ_AHEAD)
        found = await self._kv_get(handle, start, stop)
        if found is None:
            raise self._not_found(handle)
        record, first = found
        info = decode_record(handle, record, store=self.name)
        if if_match is not None and info.etag != if_match:
            raise PreconditionFailedError(
                "the object is not the version if_match names", store=self.name, handle=handle
            )
        return KeyValueReadStream(
            self._kv_get, record, info, first, start=start, end=end, store=self.name
        )

    async def stat(self, handle: str) -> ObjectInfo:
        """Describe the object from its record."""
        validate_key(handle, store=self.name)
        record = await self._kv_current(handle)
        if record is None:
            raise self._not_found(handle)
        return decode_record(handle, record, store=self.name)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Yield the objects whose keys start with ``prefix``, in key (code-point) order.

        Raises:
            StorageError: If `_scan` yields keys out of order.
        """
        validate_prefix(prefix, store=self.name)
        previous: str | None = None
        async for key, record in self._kv_pairs(prefix):
            if not key.startswith(prefix):
                continue
            if previous is not None and key <= previous:
                raise StorageError(
                    f"_scan() yielded {key!r} after {previous!r}: it must yield each key once, "
                    "in code-point order (the order of sorted() on str)",
                    store=self.name,
                )
            previous = key
            yield decode_record(key, record, store=self.name)

    # ---- other operations ------------------------------------------------------------------

    async def delete(self, handle: str, *, if_match: str | None = None) -> None:
        """Delete the object with `_delete`; a missing one is fine (unless ``if_match``)."""
        validate_key(handle, store=self.name)
        self._check_delete_condition(if_match)
        if if_match is None:
            await self._kv_write("_delete", handle, expected=None)
            return
        current = await self._kv_matching(handle, if_match)
        if not await self._kv_write("_delete", handle, expected=Expected(current)):
            raise self._kv_changed(handle)

    async def statistics(self) -> dict[str, Any]:
        """Return the bytes and objects held (counted by scanning every record)."""
        objects = used = 0
        async for key, record in self._kv_pairs(""):
            objects += 1
            used += decode_record(key, record, store=self.name).size
        return {
            "capacity": {"total": None, "used": used, "free": None},
            "objects": objects,
            "bytes": used,
        }

    @classmethod
    def class_capabilities(cls) -> dict[str, Any]:
        """Return the capabilities: conditions where the author's hooks take ``expected``."""
        derived = {
            **super().class_capabilities(),
            "list": True,
            "server_side_copy": False,
            "max_object_size": cls.max_object_size,
            "conditional_create": cls._conditional_set,
            "conditional_replace": cls._conditional_set,
            "conditional_delete": cls._conditional_delete,
            "conditional_read": True,
        }
        return {**derived, **cls.CAPABILITIES}

    def capabilities(self) -> dict[str, Any]:
        """Return this module's capabilities (``max_object_size`` as this instance has it)."""
        return {**self.class_capabilities(), "max_object_size": self.max_object_size}
