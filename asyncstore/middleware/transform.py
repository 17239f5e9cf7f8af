"""The transform middleware: transforms run on what is written (``on_put``) and read (``on_get``).

Configured by transform name, like any layer::

    [stores.logs]
    module = "transform"
    inner = "archive"
    on_put = "gzip"                              # stored compressed
    on_get = "gzip"                              # read back as written
    on_get_params = { mode = "decompress" }

A write runs ``on_put`` on the caller's bytes into one atomic write to the inner store
(nothing stored if it fails); a read streams what ``on_get`` writes for the stored object.
Conditions (``overwrite``, ``if_match``) go to the inner store unchanged. `stat` and `list`
describe objects as reads would; a transform that does not keep sizes is run once over an
object to measure it (remembered per handle and etag). Ranges and seeks skip output bytes;
a backward seek starts the transform again. See docs/transforms.md.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any, ClassVar

import anyio

# Imported at run time: the registry reads the constructor's annotations to convert options.
from asyncstore.context import ModuleContext
from asyncstore.errors import (
    ConfigError,
    NotFoundError,
    PluginError,
    TransformError,
    UnsupportedError,
)
from asyncstore.info import ObjectInfo
from asyncstore.keys import validate_content_type, validate_key, validate_metadata
from asyncstore.middleware._base import WrapperModule, resolve_inner
from asyncstore.module import StorageModule
from asyncstore.streams import ByteSource, ReadStream, check_range, source_length
from asyncstore.transforms._contract import InputInfo, Transform
from asyncstore.transforms._execute import (
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_TIMEOUT,
    Isolation,
    check_call,
    params_from_config,
    resolve,
)
from asyncstore.transforms._measure import Measured, Measurements, measure
from asyncstore.transforms._outputs import Consumer, StoreOutput
from asyncstore.transforms._read import TransformedReadStream, TransformRun, start_run
from asyncstore.transforms._run import run_outputs
from asyncstore.transforms._streams import InputStream

__all__ = ["TransformModule"]

_CACHE_ENTRIES = 1024


def _size(measured: Measured) -> int:
    assert measured.size is not None  # `_measure` always counts or knows the size
    return measured.size


class TransformModule(WrapperModule):
    """Runs a transform on every object written (``on_put``) and read (``on_get``).

    Args:
        inner: The store that keeps the objects: a store name or URL (or a module).
        on_put: The transform run on the bytes written, by name; none if omitted.
        on_put_params: Its parameters (a table, or ``name=value&...`` in a URL).
        on_get: The transform run on the bytes read, by name; none if omitted.
        on_get_params: Its parameters.
        isolation: ``inline`` (in this process) or ``process`` (in worker processes).
        timeout: Process isolation: seconds a worker may stay silent before it is killed.
        memory_limit: Process isolation: a worker's address-space limit in bytes.
    """

    LAYER: ClassVar[str] = "transform"

    def __init__(
        self,
        *,
        inner: str | StorageModule,
        on_put: str | None = None,
        on_put_params: Mapping[str, str] | str | None = None,
        on_get: str | None = None,
        on_get_params: Mapping[str, str] | str | None = None,
        isolation: str = "inline",
        timeout: float = DEFAULT_TIMEOUT,
        memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
        context: ModuleContext | None = None,
    ) -> None:
        self._isolation = Isolation(isolation, timeout, memory_limit)
        self._on_put, self._put_params = self._configure("on_put", on_put, on_put_params)
        self._on_get, self._get_params = self._configure("on_get", on_get, on_get_params)
        self._measured = Measurements(_CACHE_ENTRIES)
        self._runs = {"put": 0, "get": 0, "measure": 0}
        super().__init__(resolve_inner(inner, context))

    @staticmethod
    def _configure(
        option: str, name: str | None, params: Mapping[str, str] | str | None
    ) -> tuple[Transform | None, dict[str, str]]:
        given = params_from_config(params, f"{option}_params")
        if name is None:
            if given:
                raise ConfigError(f"{option}_params given without {option}")
            return None, {}
        try:
            transform = resolve(name)
            return transform, check_call(transform, 1, 1, given)
        except (PluginError, TransformError) as exc:
            raise ConfigError(f"{option}: {exc}") from exc

    # ---- writing -------------------------------------------------------------------------

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
        """Run ``on_put`` on the bytes of ``source`` and store its output; return the handle.

        Conditions are decided by the inner store; the handle carries its etag.

        Raises:
            TransformError: If the transform fails (nothing is stored).
        """
        conditions = self._write_conditions(overwrite, if_match)  # checked before any I/O
        if self._on_put is None:
            handle: str = await self._inner.put(
                source, key=key, metadata=metadata, content_type=content_type, **conditions
            )
            return handle
        if key is not None:
            if not self._named_keys():
                raise UnsupportedError("this module chooses its own handles", store=self.name)
            key = validate_key(key, store=self.name)
        meta = validate_metadata(metadata, store=self.name)
        ctype = validate_content_type(content_type, store=self.name)
        inner = self._inner

        async def store(chunks: Any, out_meta: Mapping[str, str], out_type: str | None) -> Any:
            return await inner.put(
                chunks, key=key, metadata=out_meta, content_type=out_type, **conditions
            )

        handle = await self._write(source, key, meta, ctype, store)  # as the inner store said
        assert isinstance(handle, str)
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
    ) -> str | None:
        """Run ``on_put`` on the bytes of ``source`` and store its output under ``handle``.

        Conditions are decided by the inner store; return its etag.

        Raises:
            TransformError: If the transform fails (nothing is stored; an old object stays).
        """
        conditions = self._write_conditions(overwrite, if_match)  # checked before any I/O
        if self._on_put is None:
            return await self._inner.assign(
                handle, source, metadata=metadata, content_type=content_type, **conditions
            )
        meta, ctype = self._check_write(handle, metadata, content_type)
        inner = self._inner

        async def store(chunks: Any, out_meta: Mapping[str, str], out_type: str | None) -> Any:
            return await inner.assign(
                handle, chunks, metadata=out_meta, content_type=out_type, **conditions
            )

        etag = await self._write(source, handle, meta, ctype, store)
        assert etag is None or isinstance(etag, str)
        return etag

    async def _write(
        self,
        source: ByteSource,
        key: str | None,
        metadata: dict[str, str],
        content_type: str | None,
        store: Consumer,
    ) -> Any:
        """Run ``on_put`` on ``source`` into one store write; return what the write returned."""
        transform = self._on_put
        assert transform is not None
        info = InputInfo(key, source_length(source), content_type, metadata, store=self.name)
        stream = InputStream.from_source(source, info)
        self._runs["put"] += 1
        try:
            (output,) = await run_outputs(
                transform, [stream], [(store, key)], self._put_params, self._isolation
            )
        finally:
            with anyio.CancelScope(shield=True):
                await stream.aclose()  # our reader of the caller's source, not the source
        assert isinstance(output, StoreOutput)
        return output.handle

    # ---- reading -------------------------------------------------------------------------

    async def get_read_stream(
        self,
        handle: str,
        *,
        start: int = 0,
        end: int | None = None,
        if_match: str | None = None,
    ) -> ReadStream:
        """Open a stream of what ``on_get`` writes for the object, in ``[start, end)``.

        Raises:
            NotFoundError: If no object exists for ``handle``.
            TransformError: If the transform fails (when opening, or later, on a read).
        """
        self._check_read_condition(if_match)
        transform = self._on_get
        if transform is None:
            return await self._inner.get_read_stream(
                handle, start=start, end=end, if_match=if_match
            )
        check_range(start, end, store=self.name)
        self._check_handle(handle)
        # One stream of the object serves the measuring run and every run of the read, each
        # rewinding it: they all see the version it opened.
        inner = await self._inner.get_read_stream(handle, if_match=if_match)

        async def restart() -> TransformRun:
            self._runs["get"] += 1
            return await start_run(
                transform, inner, self._get_params, self._isolation, store=self.name
            )

        try:
            size = inner.info.size
            if not transform.PRESERVES_SIZE:
                size = _size(await self._measure(inner, owned=False))
            run = await restart()
        except BaseException:
            await inner.aclose()
            raise
        info = replace(inner.info, size=size, content_type=run.content_type, metadata=run.metadata)
        return TransformedReadStream(info, inner, run, restart, start=start, end=end)

    async def _measure(self, stream: ReadStream, *, owned: bool) -> Measured:
        """Run ``on_get`` over a stream of an object to learn what a read shows (remembered)."""
        transform = self._on_get
        assert transform is not None
        info = stream.info
        key = None if info.etag is None else (info.handle, info.etag)
        found = None if key is None else self._measured.get(key)
        if found is None:
            self._runs["measure"] += 1
            source = InputStream.from_read_stream(stream, store=self.name, owned=owned)
            keeps = transform.PRESERVES_SIZE
            found = await measure(
                transform, source, self._get_params, self._isolation, size=not keeps
            )
            if keeps:
                found = replace(found, size=info.size)
            if key is not None:
                self._measured.put(key, found)
        elif owned:
            await stream.aclose()
        return found

    async def _outer_info(self, info: ObjectInfo) -> ObjectInfo:
        """Describe an object as a read would: ``on_get``'s metadata, content type and size."""
        if self._on_get is None:
            return info
        key = None if info.etag is None else (info.handle, info.etag)
        found = None if key is None else self._measured.get(key)
        if found is None:  # measure the version a stream opens (it may be newer than info)
            stream = await self._inner.get_read_stream(info.handle)
            info = stream.info
            found = await self._measure(stream, owned=True)
        return replace(
            info, size=_size(found), content_type=found.content_type, metadata=found.metadata
        )

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Yield the objects under ``prefix`` as reads would describe them."""
        async for info in self._inner.list(prefix):
            try:
                yield await self._outer_info(info)
            except NotFoundError:
                continue  # deleted since the inner listing saw it

    # ---- other operations ----------------------------------------------------------------

    async def copy(
        self,
        handle: str,
        *,
        key: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str:
        """Copy an object: what a read shows, written as a write would store it.

        Without transforms this is the inner store's copy (server-side where it can).
        """
        conditions = self._write_conditions(overwrite, if_match)
        if self._on_get is None and self._on_put is None:
            copied: str = await self._inner.copy(handle, key=key, **conditions)
            return copied
        if key is not None:
            if not self._named_keys():
                raise UnsupportedError("this module chooses its own handles", store=self.name)
            validate_key(key, store=self.name)
        async with await self.get_read_stream(handle) as stream:
            info = stream.info
            return await self.put(
                stream,
                key=key,
                metadata=info.metadata,
                content_type=info.content_type,
                overwrite=overwrite,
                if_match=if_match,
            )

    def _layer_statistics(self) -> dict[str, Any]:
        return {
            "on_put": None if self._on_put is None else self._on_put.name,
            "on_get": None if self._on_get is None else self._on_get.name,
            "isolation": self._isolation.mode,
            "runs": dict(self._runs),
        }

    def _stores(self) -> builtins.list[StorageModule]:
        return [self._inner]
