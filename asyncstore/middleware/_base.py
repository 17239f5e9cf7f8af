"""What every stream-intercepting middleware shares: the wrapper base class and helpers.

A middleware is a `StorageModule` that owns an inner module and transforms the bytes on their
way in and out. `WrapperModule` passes handles, deletion, listing and statistics through and
derives the *effective* capabilities from the inner module's; a subclass implements `assign`,
`get_read_stream`, `stat` and the size translation of listings.
"""

from __future__ import annotations

import builtins
import importlib
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from asyncstore.errors import IntegrityError, UnsupportedError
from asyncstore.info import Handle, ObjectInfo
from asyncstore.keys import validate_content_type, validate_key, validate_metadata
from asyncstore.module import StorageModule

if TYPE_CHECKING:
    from types import ModuleType

    from asyncstore.context import ModuleContext
    from asyncstore.streams import ByteSource

from asyncstore.streams import ReadStream, iter_source

__all__ = [
    "RangeReader",
    "WrapperModule",
    "chunk_runs",
    "cleanup_all",
    "read_exactly",
    "require_extra",
    "resolve_inner",
]


def require_extra(module: str, *, extra: str, feature: str) -> ModuleType:
    """Import an optional dependency, or fail with an `ImportError` naming the extra.

    Args:
        module: The module to import (for example ``"zstandard"``).
        extra: The asyncstore extra that installs it (for example ``"zstd"``).
        feature: What needs it, for the message (for example ``"the compress module"``).

    Raises:
        ImportError: If the module is not installed; chained to the original error.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{feature} needs the optional dependency {module.split('.')[0]!r}: "
            f"pip install 'asyncstore[{extra}]'"
        ) from exc


def resolve_inner(inner: str | StorageModule, context: ModuleContext | None) -> StorageModule:
    """Return the inner module a wrapper was configured with.

    Args:
        inner: A module instance, or a store name or URL.
        context: The host's context; its ``get_module`` resolves names. Without one, the
            name is opened with `asyncstore.config.open_store`.
    """
    if isinstance(inner, StorageModule):
        return inner
    if context is not None:
        return context.get_module(inner)
    from asyncstore.config import open_store

    return open_store(inner)


async def cleanup_all(
    stores: Iterable[StorageModule], *, older_than: float, own: Mapping[str, int] | None = None
) -> dict[str, int]:
    """Run `StorageModule.cleanup` on each store once; return the counts summed by name."""
    totals = Counter(own or {})
    for store in {id(store): store for store in stores}.values():
        totals.update(await store.cleanup(older_than=older_than))
    return dict(totals)


async def read_exactly(
    stream: ReadStream, offset: int, count: int, *, store: str, handle: str | None = None
) -> bytes:
    """Read exactly ``count`` bytes at ``offset`` of an inner stream.

    Raises:
        IntegrityError: If the inner object ends before ``offset + count``.
    """
    if stream.tell() != offset:
        await stream.seek(offset)
    parts: builtins.list[bytes] = []
    remaining = count
    while remaining > 0:
        data = await stream.read(remaining)
        if not data:
            raise IntegrityError(
                f"the stored object ends {remaining} bytes early", store=store, handle=handle
            )
        parts.append(data)
        remaining -= len(data)
    return parts[0] if len(parts) == 1 else b"".join(parts)


class RangeReader:
    """Reads byte ranges of an inner stream, with as few copies as the stream allows.

    A stream over bytes held in memory (memory's) lends them as views, with no copy at all;
    one that implements `ReadStream._readinto_at` (fs) fills one reused buffer in place, so a
    large sequential read costs one copy and no allocation per range; any other stream (s3)
    is read with `read`, whose bytes are used as they come. A returned view is only valid
    until the next `read`: decode it at once, never hand it to a caller.
    """

    __slots__ = ("_buffer", "_handle", "_into", "_store", "_stream", "_views")

    def __init__(self, stream: ReadStream, *, store: str, handle: str) -> None:
        self._stream = stream
        self._store = store
        self._handle = handle
        self._views = type(stream)._view_at is not ReadStream._view_at
        self._into = type(stream)._readinto_at is not ReadStream._readinto_at
        self._buffer = bytearray()

    async def read(self, offset: int, count: int) -> memoryview:
        """Return a view of exactly ``count`` bytes at ``offset`` of the stream.

        Raises:
            IntegrityError: If the stream ends before ``offset + count``.
        """
        stream = self._stream
        if self._views:
            if stream.tell() != offset:
                await stream.seek(offset)
            lent = stream._read_view(count)
            if lent is not None:
                if len(lent) < count:
                    raise self._short(count - len(lent))
                return lent
            self._views = False  # it lends nothing after all: read it as any other
        if not self._into:
            data = await read_exactly(stream, offset, count, store=self._store, handle=self._handle)
            return memoryview(data)
        if len(self._buffer) < count:
            self._buffer = bytearray(count)  # views of the old one may still be alive
        view = memoryview(self._buffer)[:count]
        if stream.tell() != offset:
            await stream.seek(offset)
        filled = 0
        while filled < count:
            got = await stream.readinto(view[filled:])
            if got <= 0:
                raise self._short(count - filled)
            filled += got
        return view

    def _short(self, missing: int) -> IntegrityError:
        return IntegrityError(
            f"the stored object ends {missing} bytes early", store=self._store, handle=self._handle
        )


async def chunk_runs(source: ByteSource, size: int) -> AsyncIterator[tuple[memoryview, bool]]:
    """Cut a byte source into ``size``-byte chunks, yielded in runs: ``(run, final)`` pairs.

    A run holds one or more whole chunks back to back (cut it at multiples of ``size``); the
    final run holds the last chunk alone: 1 to ``size`` bytes, or none for an empty source.
    Runs are views of the source's own pieces where they can be (no copy); only a chunk that
    spans two pieces, or that may be the last one, is copied. A run is only valid until the
    next one is asked for: use or copy it at once.

    Raises:
        TypeError: If the source is not an accepted byte source.
    """
    pending = bytearray()
    async for piece in iter_source(source):
        view = memoryview(piece)
        at = 0
        if pending:
            at = min(size - len(pending), len(view))
            pending += view[:at]
            if at == len(view):
                continue  # a full pending chunk may still be the final one: hold it
            yield memoryview(pending), False
            pending = bytearray()  # the yielded view may still be alive: never resize it
        whole = (len(view) - at - 1) // size  # the chunks that more bytes surely follow
        if whole:
            yield view[at : at + whole * size], False
            at += whole * size
        pending += view[at:]
    yield memoryview(pending), True


class WrapperModule(StorageModule):
    """The base class of middleware: a module that owns an inner module and wraps its streams.

    The wrapper uses the inner module's handles as its own, so a keyed inner module makes a
    keyed wrapper. It owns the inner module and closes it in `aclose`.
    """

    LAYER: ClassVar[str] = "wrapper"
    """The layer's name in `statistics` and `repr`."""

    def __init__(self, inner: StorageModule) -> None:
        self._inner = inner

    @property
    def inner(self) -> StorageModule:
        """The wrapped module."""
        return self._inner

    def _named_keys(self) -> bool:
        return bool(self._inner.capabilities().get("named_keys"))

    def _check_handle(self, handle: str) -> str:
        """Validate a handle before any I/O when the inner module is keyed."""
        if self._named_keys():
            return validate_key(handle, store=self.name)
        return handle

    def _check_write(
        self,
        handle: str,
        metadata: Mapping[str, str] | None,
        content_type: str | None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> tuple[dict[str, str], str | None]:
        """Validate a write's handle, metadata, content type and conditions before any I/O."""
        self._check_handle(handle)
        self._write_conditions(overwrite, if_match)
        return (
            validate_metadata(metadata, store=self.name),
            validate_content_type(content_type, store=self.name),
        )

    # ---- passed through ------------------------------------------------------------------

    async def put(
        self,
        source: ByteSource,
        *,
        key: str | None = None,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str:
        """Transform and store the bytes of ``source``; return the handle.

        The handle is chosen (or validated) before the bytes are transformed, since some
        layers bind it into the stored form. Atomic as the inner module's `assign` is, and
        conditional as it is (the etag of a wrapped object is the stored object's).
        """
        conditions = self._write_conditions(overwrite, if_match)
        if key is None:
            handle = await self._inner.new_data()
        elif self._named_keys():
            handle = validate_key(key, store=self.name)
        else:
            raise UnsupportedError("this module chooses its own handles", store=self.name)
        etag = await self.assign(
            handle, source, metadata=metadata, content_type=content_type, **conditions
        )
        return Handle(handle, etag)

    async def new_data(self) -> str:
        """Allocate a fresh handle in the inner module."""
        return await self._inner.new_data()

    async def available(self, handle: str) -> bool:
        """Return whether the inner module holds a complete object for ``handle``."""
        self._check_handle(handle)
        return await self._inner.available(handle)

    async def delete(self, handle: str, *, if_match: str | None = None) -> None:
        """Delete the object from the inner module; a missing one is not an error.

        ``if_match`` is decided by the inner module.
        """
        self._check_handle(handle)
        self._check_delete_condition(if_match)
        await self._inner.delete(handle, if_match=if_match)

    async def cleanup(self, *, older_than: float = 3600.0) -> dict[str, int]:
        """Clean up the inner modules; return the sum of their counts."""
        return await cleanup_all(self._stores(), older_than=older_than)

    def _stores(self) -> builtins.list[StorageModule]:
        """The distinct modules this layer owns (cleaned up and closed with it)."""
        return [self._inner]

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Yield the inner module's objects under ``prefix``, described as this layer sees them."""
        async for info in self._inner.list(prefix):
            yield await self._outer_info(info)

    async def _outer_info(self, info: ObjectInfo) -> ObjectInfo:
        """Translate an inner object's description (its size, above all) for callers."""
        return info

    async def stat(self, handle: str) -> ObjectInfo:
        """Describe the object as callers see it."""
        self._check_handle(handle)
        return await self._outer_info(await self._inner.stat(handle))

    async def statistics(self) -> dict[str, Any]:
        """Return the inner module's capacity, its statistics, and this layer's figures."""
        inner = await self._inner.statistics()
        return {
            "capacity": inner.get("capacity", {"total": None, "used": None, "free": None}),
            "inner": inner,
            self.LAYER: self._layer_statistics(),
        }

    def _layer_statistics(self) -> dict[str, Any]:
        return {}

    def capabilities(self) -> dict[str, Any]:
        """Return the effective capabilities: the inner module's, less what the layer hides.

        Server-side copies and presigned URLs would expose the stored (transformed) bytes, so
        a layer never offers them; everything else is what the inner module offers.
        """
        effective = dict(self._inner.capabilities())
        effective.update(
            {
                "server_side_copy": False,
                "presign": False,
                "reconfigure": False,
            }
        )
        return effective

    async def aclose(self) -> None:
        """Close the inner module, which this wrapper owns."""
        await self._inner.aclose()

    def __repr__(self) -> str:
        inner = getattr(self, "_inner", None)  # None while the constructor fails
        return f"<{type(self).__name__} name={self.name!r} inner={inner!r}>"

    # ---- helpers -------------------------------------------------------------------------

    @staticmethod
    def _with_size(info: ObjectInfo, size: int) -> ObjectInfo:
        return replace(info, size=size)
