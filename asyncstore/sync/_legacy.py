"""The reverse adapter: a legacy synchronous module as an async `StorageModule`.

A legacy module is a plain object with the original SDK's blocking methods, each taking a
``context`` first: ``put(context, stream) -> module_data``, ``new_data(context)``,
``assign(context, module_data, stream)``, ``available``, ``get_read_stream`` (returning a file
with read, seek and close), ``get_size``, ``delete``, ``statistics(context)`` and
``capabilities(context)`` (dicts or JSON strings). Only ``get_read_stream``, and ``put`` or
both ``new_data`` and ``assign``, are required (the original guide asks for seven methods:
``__init__(**kwargs)``, ``available``, ``put``, ``get_read_stream``, ``delete``,
``statistics``, ``capabilities``). `LegacyModule` runs each call in a worker thread, at most
``max_threads`` at once, derives what it can of the rest and declares what it cannot in its
capabilities.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from typing import Any, ClassVar, TypeVar, cast

import anyio
import anyio.to_thread

from asyncstore.context import ModuleContext
from asyncstore.errors import NotFoundError, StorageError, UnsupportedError
from asyncstore.info import ObjectInfo
from asyncstore.keys import validate_content_type, validate_metadata
from asyncstore.module import StorageModule
from asyncstore.streams import ByteSource, ReadStream, check_range, iter_source
from asyncstore.sync._context import LegacyContext, ModuleView, ThreadRunner
from asyncstore.sync._legacy_described import (
    capacity,
    declared_capabilities,
    has_method,
    parse_json,
    translate_error,
)
from asyncstore.sync._legacy_io import (
    LegacyReadStream,
    SourceReader,
    close_raw,
    measure,
    open_measured,
)

__all__ = ["LegacyModule", "from_sync_module"]

T = TypeVar("T")


class LegacyModule(StorageModule):
    """A storage module driving a legacy synchronous module object in worker threads.

    The legacy module chooses its handles (``module_data``), so this module is not keyed.
    Metadata and content types are checked, as on every module, but a legacy module has
    nowhere to keep them: `capabilities` says ``"metadata": False``. Reads support ranges
    and seeking (through the legacy stream's ``seek``, or by skipping forward). A legacy
    module that lacks ``new_data``, ``assign`` or ``delete`` raises `UnsupportedError` for
    them and declares them False in `capabilities`; missing ``available`` and ``get_size``
    are derived from the stream, missing ``statistics`` gives an unknown capacity. Errors
    are translated: `FileNotFoundError` (and
    `KeyError` for a handle) to `NotFoundError`, other `OSError` by errno, and anything else
    to `StorageError`, chained. An exception raised by the byte source propagates unchanged.

    Args:
        legacy: The legacy module object.
        context: The host's services; ``context["func"].getModule(name)`` in legacy code
            reaches the stores this context's ``get_module`` opens (this module owns them).
        max_threads: How many legacy calls (and, separately, stream reads) run at once.
    """

    name = "legacy"
    keyed: ClassVar[bool] = False
    CAPABILITIES: ClassVar[Mapping[str, Any]] = {"metadata": False}

    def __init__(
        self, legacy: object, *, context: ModuleContext | None = None, max_threads: int = 8
    ) -> None:
        if not has_method(legacy, "get_read_stream") or not (
            has_method(legacy, "put")
            or (has_method(legacy, "new_data") and has_method(legacy, "assign"))
        ):
            raise TypeError(
                f"{type(legacy).__name__} is not a legacy storage module: it needs "
                "get_read_stream(context, module_data), and put(context, stream) or both "
                "new_data(context) and assign(context, module_data, stream)"
            )
        if not isinstance(max_threads, int) or max_threads < 1:
            raise ValueError(f"max_threads must be an int >= 1, not {max_threads!r}")
        self._legacy = legacy
        self._context = context or ModuleContext(store_name=type(legacy).__name__)
        self.name = self._context.store_name
        self._calls = anyio.CapacityLimiter(max_threads)
        # Stream reads have their own threads: a legacy put waiting for its source's bytes
        # (possibly a stream of this module, as in copy) must never starve the reads.
        self._streams = anyio.CapacityLimiter(max_threads)
        self._runner = ThreadRunner()
        self._legacy_context = LegacyContext(
            store=self.name, get_module=self._get_module, log=self._context.logger
        )
        self._views: dict[str, object] = {}
        self._owned: list[StorageModule] = []
        self._views_lock = threading.Lock()
        self._capabilities: dict[str, Any] | None = None
        self._closed = False

    @property
    def legacy(self) -> object:
        """The legacy module object."""
        return self._legacy

    def _has(self, method: str) -> bool:
        return has_method(self._legacy, method)

    # ---- calling the legacy code ---------------------------------------------------------

    @contextmanager
    def _translated(self, method: str, handle: str | None) -> Iterator[None]:
        try:
            yield
        except StorageError:
            raise
        except Exception as exc:
            raise translate_error(exc, method, store=self.name, handle=handle) from exc

    async def _in_thread(
        self,
        limiter: anyio.CapacityLimiter,
        method: str,
        handle: str | None,
        function: Callable[..., T],
        *args: Any,
    ) -> T:
        with self._translated(method, handle):
            return await anyio.to_thread.run_sync(partial(function, *args), limiter=limiter)

    async def _call(self, method: str, *args: Any, handle: str | None = None) -> Any:
        function = getattr(self._legacy, method, None)
        if not callable(function):
            raise UnsupportedError(
                f"the legacy module has no {method}()", store=self.name, handle=handle
            )
        return await self._in_thread(
            self._calls, method, handle, function, self._legacy_context, *args
        )

    def _get_module(self, spec: str) -> object:
        """``context["func"].getModule``: open (once) and return another configured module."""
        with self._views_lock:
            view = self._views.get(spec)
            if view is None:
                module = self._context.get_module(spec)
                self._owned.append(module)
                # A legacy inner module is handed over as it is, as the original SDK did.
                if isinstance(module, LegacyModule):
                    view = module.legacy
                else:
                    view = ModuleView(module, self._runner)
                self._views[spec] = view
            return view

    # ---- writing -------------------------------------------------------------------------

    async def _write(self, method: str, handle: str | None, *args: Any, source: ByteSource) -> Any:
        """Call a legacy write with a blocking reader of ``source`` as its last argument."""
        chunks = iter_source(source)
        try:
            reader = SourceReader(chunks, await anext(chunks, None))
            try:
                result = await self._call(method, *args, reader, handle=handle)
            except Exception:
                if reader.error is not None:
                    raise reader.error from None
                raise
            if reader.error is not None:  # the legacy code swallowed the source's failure
                if isinstance(result, str) or handle is not None:
                    # Best effort: the source's error is what the caller must see.
                    with contextlib.suppress(StorageError):
                        await self.delete(handle if handle is not None else result)
                raise reader.error
            return result
        finally:
            await cast(Any, chunks).aclose()

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
        """Store the bytes of ``source`` through the legacy ``put`` (or new_data + assign).

        Raises:
            UnsupportedError: If a key or a condition is given: the legacy module chooses
                handles and knows no conditions.
        """
        self._write_conditions(overwrite, if_match)
        if key is not None:
            raise UnsupportedError("this module chooses its own handles", store=self.name)
        validate_metadata(metadata, store=self.name)
        validate_content_type(content_type, store=self.name)
        if not self._has("put"):
            return await super().put(source, metadata=metadata, content_type=content_type)
        handle = await self._write("put", None, source=source)
        if not isinstance(handle, str):
            raise StorageError(
                f"the legacy put() returned {type(handle).__name__}, not a str", store=self.name
            )
        return handle

    async def new_data(self) -> str:
        """Allocate a handle with the legacy ``new_data``.

        Raises:
            UnsupportedError: If the legacy module has no ``new_data``: only it knows what
                its handles look like.
        """
        handle = await self._call("new_data")
        if not isinstance(handle, str):
            raise StorageError(
                f"the legacy new_data() returned {type(handle).__name__}, not a str",
                store=self.name,
            )
        return handle

    async def assign(
        self,
        handle: str,
        source: ByteSource,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> None:
        """Store the bytes of ``source`` under ``handle`` through the legacy ``assign``.

        Raises:
            UnsupportedError: If the legacy module has no ``assign``, or a condition is given.
        """
        self._write_conditions(overwrite, if_match)
        validate_metadata(metadata, store=self.name)
        validate_content_type(content_type, store=self.name)
        if not self._has("assign"):
            raise UnsupportedError("the legacy module has no assign()", store=self.name)
        await self._write("assign", handle, handle, source=source)

    # ---- reading -------------------------------------------------------------------------

    def _open_sync(self, handle: str) -> Any:
        raw = getattr(self._legacy, "get_read_stream")(self._legacy_context, handle)  # noqa: B009
        if raw is None:
            raise self._not_found(handle)
        return raw

    async def _open(self, handle: str) -> Any:
        return await self._in_thread(
            self._calls, "get_read_stream", handle, self._open_sync, handle
        )

    async def _size(self, handle: str) -> int:
        if self._has("get_size"):
            size = await self._call("get_size", handle, handle=handle)
            if size is None or int(size) < 0:
                raise self._not_found(handle)
            return int(size)
        raw = await self._open(handle)
        try:
            return await self._in_thread(self._streams, "get_size", handle, measure, raw)
        finally:
            await self._in_thread(self._streams, "close", handle, close_raw, raw)

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None, if_match: str | None = None
    ) -> ReadStream:
        """Open the legacy stream of ``handle`` as a `ReadStream` over ``[start, end)``.

        Without a legacy ``get_size``, a seekable stream is measured by seeking to its end
        and back, so the object is opened once.
        """
        check_range(start, end, store=self.name)
        self._check_read_condition(if_match)
        if self._has("get_size"):
            size = await self._size(handle)
            raw = await self._open(handle)
        else:
            raw, size = await self._in_thread(
                self._calls, "get_read_stream", handle, open_measured, self._open_sync, handle
            )
        info = ObjectInfo(handle=handle, size=size)
        return LegacyReadStream(self, raw, info, start=start, end=end)

    async def stat(self, handle: str) -> ObjectInfo:
        """Describe the object: its handle and size (a legacy module knows nothing else)."""
        return ObjectInfo(handle=handle, size=await self._size(handle))

    async def get_size(self, handle: str) -> int:
        """Return the size from the legacy ``get_size`` (or by measuring the stream)."""
        return await self._size(handle)

    async def available(self, handle: str) -> bool:
        """Return the legacy ``available`` (or whether the size can be found)."""
        try:
            if self._has("available"):
                return bool(await self._call("available", handle, handle=handle))
            await self._size(handle)
        except NotFoundError:
            return False
        return True

    # ---- other operations ----------------------------------------------------------------

    async def delete(self, handle: str, *, if_match: str | None = None) -> None:
        """Delete through the legacy ``delete``; a missing object is not an error.

        Raises:
            UnsupportedError: If the legacy module has no ``delete``, or ``if_match`` is given.
        """
        self._check_delete_condition(if_match)
        try:
            await self._call("delete", handle, handle=handle)
        except NotFoundError:
            pass

    async def statistics(self) -> dict[str, Any]:
        """Return the legacy statistics with ``capacity`` in the standard shape."""
        if not self._has("statistics"):
            return await super().statistics()
        stats = parse_json(await self._call("statistics"), "statistics")
        return {**stats, "capacity": capacity(stats.get("capacity"))}

    @classmethod
    def class_capabilities(cls) -> dict[str, Any]:
        """Return the capabilities every instance has; a `legacy_module_class` knows its methods."""
        derived = super().class_capabilities()
        legacy_class = getattr(cls, "legacy_class", None)
        if legacy_class is not None:
            derived.update(declared_capabilities(legacy_class))
        return derived

    def capabilities(self) -> dict[str, Any]:
        """Return the derived capabilities merged with the legacy ones (CDMI names).

        The standard keys describe what this adapter does, except ``max_object_size``, which
        the legacy module may set: ``new_data``, ``assign`` and ``delete`` are False when the
        legacy module lacks them, and ``legacy_missing`` lists every optional method it
        lacks (see `OPTIONAL_METHODS`). The legacy ``capabilities`` is called once, in the
        calling thread: it must not do I/O.
        """
        if self._capabilities is None:
            derived = {**self.class_capabilities(), **declared_capabilities(self._legacy)}
            legacy: dict[str, Any] = {}
            if self._has("capabilities"):
                with self._translated("capabilities", None):
                    legacy = parse_json(
                        getattr(self._legacy, "capabilities")(self._legacy_context),  # noqa: B009
                        "capabilities",
                    )
            limit = legacy.get("max_object_size")
            if isinstance(limit, int) and not isinstance(limit, bool):
                derived["max_object_size"] = limit
            self._capabilities = {**legacy, **derived}
        return dict(self._capabilities)

    async def aclose(self) -> None:
        """Close the legacy module (its ``close()``, if any) and the modules it opened."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._has("close"):
                await self._in_thread(self._calls, "close", None, close_raw, self._legacy)
        finally:
            for module in reversed(self._owned):
                await module.aclose()


def from_sync_module(
    legacy: object, *, context: ModuleContext | None = None, max_threads: int = 8
) -> LegacyModule:
    """Wrap a legacy synchronous module object as an async `StorageModule`.

    Args:
        legacy: An object with the classic methods (see `LegacyModule`).
        context: The host's services, for ``context["func"].getModule`` in legacy code.
        max_threads: How many legacy calls run at once.
    """
    return LegacyModule(legacy, context=context, max_threads=max_threads)
