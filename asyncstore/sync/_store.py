"""`SyncStore`: the blocking face of a storage module, for thread-based callers.

Every method is a one-liner handing the module's coroutine to the process-wide loop thread
(`asyncstore.sync._portal`) and waiting for its result.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import threading
import types
import weakref
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from asyncstore.info import ObjectInfo
from asyncstore.module import StorageModule, Store
from asyncstore.streams import ByteSource
from asyncstore.sync import _portal
from asyncstore.sync._stream import DEFAULT_BUFFER_SIZE, SyncReadStream, loop_source, open_stream

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from typing_extensions import Self

__all__ = ["SyncListing", "SyncStore"]

T = TypeVar("T")

_SCAN_DEPTH = 4
_SCAN_WIDTH = 64
_SKIP = (str, bytes, bytearray, memoryview, int, float, complex, bool, type, types.ModuleType)

# Stores still open, closed at interpreter exit before the loop stops.
_open_stores: weakref.WeakSet[SyncStore] = weakref.WeakSet()
# Modules of a forked parent, kept alive in the child so that their finalisers never run there.
_inherited_modules: list[StorageModule] = []


def _children(obj: object) -> list[object]:
    if isinstance(obj, (list, tuple, set, frozenset)):
        return list(itertools.islice(obj, _SCAN_WIDTH))
    if isinstance(obj, dict):
        return list(itertools.islice(obj.values(), _SCAN_WIDTH))
    found: list[object] = []
    try:
        found.extend(vars(obj).values())
    except TypeError:
        pass
    for klass in type(obj).__mro__:
        slots = getattr(klass, "__slots__", ())
        found.extend(
            getattr(obj, slot, None)
            for slot in ([slots] if isinstance(slots, str) else slots)
            if isinstance(slot, str) and slot not in ("__dict__", "__weakref__")
        )
    return found[:_SCAN_WIDTH]


def _foreign_loop(module: object) -> asyncio.AbstractEventLoop | None:
    """Return a running event loop, other than ours, that the module holds, if any.

    Looks a few levels deep into the module's attributes for asyncio loops (client sessions,
    connectors and locks keep a reference to the loop they are bound to).
    """
    ours = _portal.current_loop()
    seen: set[int] = set()
    pending: list[tuple[object, int]] = [(module, 0)]
    while pending:
        obj, depth = pending.pop()
        if id(obj) in seen or obj is None or isinstance(obj, _SKIP):
            continue
        seen.add(id(obj))
        if isinstance(obj, asyncio.AbstractEventLoop):
            if obj is not ours and obj.is_running():
                return obj
            continue
        if depth < _SCAN_DEPTH:
            pending.extend((child, depth + 1) for child in _children(obj))
    return None


async def _enter(factory: Callable[[], StorageModule]) -> StorageModule:
    module = factory()
    return await module.__aenter__()


class SyncStore:
    """A blocking wrapper of a storage module, safe to share between threads.

    Every method of the `asyncstore.StorageModule` contract is here with the same name and
    arguments, blocking until done. The module runs on one background event loop per process
    (started by the first call, shared by every `SyncStore`, stopped at interpreter exit), so
    a `SyncStore` may be created at import time in a WSGI app and used by any number of
    worker threads at once. Exceptions propagate unchanged.

    Use `SyncStore.open` for a configured store name or a URL: the module is then created on
    the loop thread, so clients bound to an event loop (aiohttp, aiobotocore) only ever meet
    that loop, and after ``os.fork()`` the child opens its own copy. A module given to the
    constructor is used as it is in a forked child (right for memory and fs; open network
    stores by spec instead).

    The store owns its module: `close` (or leaving a ``with`` block) closes it.

    Args:
        module: The module to drive. It must not be in use on another event loop.

    Raises:
        RuntimeError: If created or called from inside a running event loop (use the async
            API there), or if the module holds a running event loop other than the
            `SyncStore` loop.
        TypeError: If ``module`` is not a storage module.
    """

    list_page_size: ClassVar[int] = 1000
    """How many objects `list` fetches from the loop per round trip."""

    def __init__(self, module: Store) -> None:
        _portal.check_blocking_allowed("SyncStore()")
        if not isinstance(module, Store):
            raise TypeError(f"SyncStore needs a storage module, not {type(module).__name__}")
        loop = _foreign_loop(module)
        if loop is not None:
            raise RuntimeError(
                f"{module!r} is in use on another running event loop ({loop!r}); a SyncStore "
                "runs its module on its own loop thread and a module cannot serve two loops. "
                "Keep using it with await on its loop, or let the SyncStore create it: "
                "SyncStore.open(store_name_or_url)."
            )
        self._setup(module, None, module.aclose)

    def _setup(
        self,
        module: Store,
        factory: Callable[[], StorageModule] | None,
        closer: Callable[[], Awaitable[object]],
    ) -> None:
        self._module = module
        self._factory = factory
        self._closer = closer
        self._pid = os.getpid()
        self._closed = False
        _open_stores.add(self)

    @classmethod
    def open(cls, spec: str, **options: Any) -> Self:
        """Open a store by config name or URL on the loop thread (see `asyncstore.open_store`).

        Args:
            spec: A store name from the config file, or a URL such as ``fs:///srv/blobs``.
            **options: Passed to `asyncstore.open_store` (module options, ``config=``,
                ``registry=``, ``environ=``).

        Raises:
            ConfigError: If the store is unknown or its options are wrong.
            PluginError: If its plugin cannot be loaded.
            RuntimeError: If called from inside a running event loop.
        """
        from asyncstore.config import open_store

        def factory() -> StorageModule:
            return open_store(spec, **options)

        module = _portal.call(_enter, factory)
        store = cls.__new__(cls)
        store._setup(module, factory, lambda: module.__aexit__(None, None, None))
        return store

    # ---- plumbing ------------------------------------------------------------------------

    @property
    def module(self) -> Store:
        """The wrapped module (await its methods only on the `SyncStore` loop)."""
        return self._module

    @property
    def name(self) -> str:
        """The store name used in error messages."""
        return self._module.name

    @property
    def closed(self) -> bool:
        """Whether `close` has been called."""
        return self._closed

    def _call(self, method: Callable[[Store], Awaitable[T]]) -> T:
        if self._closed:
            raise RuntimeError(f"SyncStore {self.name!r} is closed")
        if self._pid != _portal.current_pid():
            self._after_fork()
        return _portal.call(method, self._module)

    def _after_fork(self) -> None:
        with _fork_lock:
            if self._pid == os.getpid():
                return
            if self._factory is not None:
                if isinstance(self._module, StorageModule):
                    _inherited_modules.append(self._module)
                module = _portal.call(_enter, self._factory)
                self._module = module
                self._closer = lambda: module.__aexit__(None, None, None)
            self._pid = os.getpid()

    def __repr__(self) -> str:
        return f"<SyncStore {self._module!r}{' closed' if self._closed else ''}>"

    # ---- writing -------------------------------------------------------------------------

    def put(
        self,
        source: ByteSource,
        *,
        key: str | None = None,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str:
        """Store the bytes of ``source`` and return the handle (see `StorageModule.put`).

        ``source`` may be bytes, a binary file object (read in worker threads), an iterable
        of bytes (generators are advanced in worker threads) or a `SyncReadStream`. The
        conditions ``overwrite`` and ``if_match`` are as for `StorageModule.put`.
        """
        # Prepared here rather than on the loop, which every thread waits for.
        prepared = loop_source(source, _portal.PORTAL)
        return self._call(
            lambda m: m.put(
                prepared,
                key=key,
                metadata=metadata,
                content_type=content_type,
                overwrite=overwrite,
                if_match=if_match,
            )
        )

    def new_data(self) -> str:
        """Allocate a fresh unique handle (see `StorageModule.new_data`)."""
        return self._call(lambda m: m.new_data())

    def assign(
        self,
        handle: str,
        source: ByteSource,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str | None:
        """Store the bytes of ``source`` under ``handle``; return the new etag if known.

        See `StorageModule.assign`.
        """
        prepared = loop_source(source, _portal.PORTAL)
        return self._call(
            lambda m: m.assign(
                handle,
                prepared,
                metadata=metadata,
                content_type=content_type,
                overwrite=overwrite,
                if_match=if_match,
            )
        )

    # ---- reading -------------------------------------------------------------------------

    def available(self, handle: str) -> bool:
        """Return whether complete data exists for ``handle``."""
        return self._call(lambda m: m.available(handle))

    def get_read_stream(
        self,
        handle: str,
        *,
        start: int = 0,
        end: int | None = None,
        if_match: str | None = None,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
    ) -> SyncReadStream:
        """Open a blocking binary file over the bytes in ``[start, end)``.

        Args:
            handle: The object's handle.
            start: The first byte of the range.
            end: The end of the range (exclusive); the object's end when None.
            if_match: Open only the version with this etag.
            buffer_size: How many bytes small reads fetch ahead.

        Raises:
            NotFoundError: If no complete object exists for ``handle``.
            InvalidRangeError: If the range is malformed.
            PreconditionFailedError: If ``if_match`` is not the object's etag.
        """
        stream, whole = self._call(
            lambda m: open_stream(
                m.get_read_stream(handle, start=start, end=end, if_match=if_match), buffer_size
            )
        )
        return SyncReadStream(stream, _portal.PORTAL, buffer_size=buffer_size, whole=whole)

    def get_size(self, handle: str) -> int:
        """Return the object's size in bytes (see `StorageModule.get_size`)."""
        return self._call(lambda m: m.get_size(handle))

    def stat(self, handle: str) -> ObjectInfo:
        """Describe the object (see `StorageModule.stat`)."""
        return self._call(lambda m: m.stat(handle))

    def list(self, prefix: str = "") -> SyncListing:
        """Iterate over the objects whose handles start with ``prefix``, in handle order.

        Returns a lazy iterator fetching `list_page_size` objects per round trip, so a large
        listing is never held in memory; close it (or use ``with``) when stopping early.
        """
        return SyncListing(self, prefix, self.list_page_size)

    # ---- other operations ----------------------------------------------------------------

    def delete(self, handle: str, *, if_match: str | None = None) -> None:
        """Delete the object; a missing one is not an error (see `StorageModule.delete`)."""
        return self._call(lambda m: m.delete(handle, if_match=if_match))

    def copy(
        self,
        handle: str,
        *,
        key: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str:
        """Copy the object and return the new handle (see `StorageModule.copy`)."""
        return self._call(lambda m: m.copy(handle, key=key, overwrite=overwrite, if_match=if_match))

    def presign(self, handle: str, *, method: str = "GET", expires: int = 3600) -> str:
        """Return a URL granting ``method`` on the object (see `StorageModule.presign`)."""
        return self._call(lambda m: _presign(m, handle, method, expires))

    def cleanup(self, *, older_than: float = 3600.0) -> dict[str, int]:
        """Remove leftovers of interrupted writes (see `StorageModule.cleanup`)."""
        return self._call(lambda m: m.cleanup(older_than=older_than))

    def statistics(self) -> dict[str, Any]:
        """Return the module's statistics (see `StorageModule.statistics`)."""
        return self._call(lambda m: m.statistics())

    def capabilities(self) -> dict[str, Any]:
        """Return the module's capabilities; no I/O, so no round trip to the loop."""
        return self._module.capabilities()

    def reconfigure(self, **options: Any) -> None:
        """Update options of the live module (see `StorageModule.reconfigure`)."""
        return self._call(lambda m: _reconfigure(m, options))

    # ---- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Close the module; closing twice is harmless."""
        if self._closed:
            return
        _portal.check_blocking_allowed("SyncStore.close()")
        self._closed = True
        _open_stores.discard(self)
        if self._pid == os.getpid():
            _portal.call(self._closer)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


async def _presign(module: Store, handle: str, method: str, expires: int) -> str:
    presign: Callable[..., Awaitable[str]] = getattr(module, "presign")  # noqa: B009
    return await presign(handle, method=method, expires=expires)


async def _reconfigure(module: Store, options: Mapping[str, Any]) -> None:
    reconfigure: Callable[..., Awaitable[None]] = getattr(module, "reconfigure")  # noqa: B009
    await reconfigure(**options)


class SyncListing(Iterator[ObjectInfo]):
    """A lazy, blocking iterator over a module's listing, fetched a page at a time."""

    def __init__(self, store: SyncStore, prefix: str, page_size: int) -> None:
        self._store = store
        self._prefix = prefix
        self._page_size = max(1, page_size)
        self._iterator: AsyncIterator[ObjectInfo] | None = None
        self._page: list[ObjectInfo] = []
        self._index = 0
        self._done = False
        self._pid = os.getpid()

    async def _fetch(self, module: Store) -> list[ObjectInfo]:
        if self._iterator is None:
            self._iterator = aiter(module.list(self._prefix))
        page: list[ObjectInfo] = []
        while len(page) < self._page_size:
            info = await anext(self._iterator, None)
            if info is None:
                self._done = True
                break
            page.append(info)
        return page

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> ObjectInfo:
        if self._index >= len(self._page):
            if self._done:
                raise StopIteration
            if self._pid != os.getpid():
                raise RuntimeError("this listing was started before os.fork(); list again")
            self._page = self._store._call(self._fetch)
            self._index = 0
            if not self._page:
                raise StopIteration
        info = self._page[self._index]
        self._index += 1
        return info

    def close(self) -> None:
        """Stop the listing early and release what the module holds for it."""
        if not self._done:
            self._done = True
            self._page = []
            closer = getattr(self._iterator, "aclose", None)
            if closer is not None and self._pid == os.getpid():
                _portal.call(closer)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not self._done and self._pid == os.getpid():
            closer = getattr(self._iterator, "aclose", None)
            if closer is not None:
                _portal.call_soon(closer)


_fork_lock = threading.Lock()


def _reset_after_fork() -> None:
    global _fork_lock
    _fork_lock = threading.Lock()


def _close_open_stores() -> None:
    for store in list(_open_stores):
        if store._pid == os.getpid() and not store._closed:
            store._closed = True
            # One store failing to close must not keep the others open.
            with contextlib.suppress(Exception):
                _portal.call(store._closer, timeout=_portal.EXIT_TIMEOUT)


os.register_at_fork(after_in_child=_reset_after_fork)
_portal.before_exit(_close_open_stores)
