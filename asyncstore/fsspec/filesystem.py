"""`AsyncStoreFileSystem`: any asyncstore store as an fsspec filesystem (protocol ``asyncstore``).

Installed with ``asyncstore[fsspec]``, it is registered in fsspec's ``fsspec.specs`` entry
points, so pandas, pyarrow, dask and every fsspec user open ``asyncstore://STORE/key`` where
``STORE`` is a store of the config file (``asyncstore.toml``, found as the CLI finds it)::

    pd.read_csv("asyncstore://archive/2024/sales.csv")
    fs = fsspec.filesystem("asyncstore", store="s3://bucket/prefix?region=eu-west-1")

One filesystem instance is one store, opened on first use on the filesystem's event loop
(fsspec's IO thread for blocking code, the caller's loop with ``asynchronous=True``) and closed
by `close`, or when the instance is collected. Directories are the ``/``-separated prefixes of
keys, as in s3fs: empty directories are not stored, `mkdir` does nothing, and a directory
exists while a key below it does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import weakref
from collections.abc import Callable
from typing import Any, ClassVar

import anyio
import anyio.to_thread
from fsspec.asyn import AsyncFileSystem, _run_coros_in_chunks, sync
from fsspec.callbacks import DEFAULT_CALLBACK, Callback

from asyncstore.errors import ConfigError, NotFoundError, StorageError, UnsupportedError
from asyncstore.fsspec._files import StoreFile, StoreStreamedFile, guess_content_type
from asyncstore.fsspec._paths import (
    PROTOCOL,
    directory_entry,
    file_entry,
    split_url,
    strip_path,
    tree_entries,
)
from asyncstore.module import StorageModule
from asyncstore.streams import ReadStream

__all__ = ["AsyncStoreFileSystem"]

DEFAULT_BLOCK_SIZE = 8 << 20
"""Bytes fetched per read of a file, and buffered per chunk while writing one."""


class _Holder:
    """The store a filesystem opened, shared with the finalizer that closes it."""

    def __init__(self, module: StorageModule | None, owned: bool) -> None:
        self.module = module
        self.owned = owned
        self.opened = not owned
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pid = os.getpid()


_closing: set[asyncio.Task[None]] = set()
"""Closes scheduled by finalizers on a loop's own thread (kept until done)."""


def _close_on_loop(holder: _Holder) -> None:
    """Close an owned store from a finalizer, on the loop it lives on, if that still runs."""
    module, loop = holder.module, holder.loop
    if not holder.owned or module is None or loop is None or holder.pid != os.getpid():
        return
    holder.module = None
    if loop.is_closed() or not loop.is_running():
        return
    with contextlib.suppress(Exception):
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            # Collected on the loop's own thread: waiting here would block the loop.
            task = loop.create_task(module.aclose())
            _closing.add(task)
            task.add_done_callback(_closing.discard)
            return
        future = asyncio.run_coroutine_threadsafe(module.aclose(), loop)
        future.result(timeout=5)


class _Progress:
    """A local file whose reads report progress to an fsspec callback."""

    def __init__(self, file: Any, callback: Callback) -> None:
        self._file = file
        self._callback = callback

    def read(self, n: int = -1, /) -> bytes:
        data: bytes = self._file.read(n)
        self._callback.relative_update(len(data))
        return data


class AsyncStoreFileSystem(AsyncFileSystem):  # type: ignore[misc]
    """An fsspec filesystem over one asyncstore store.

    Paths are the store's keys (``dir/file.csv``); URLs are ``asyncstore://STORE/key`` for a
    configured store name, or ``asyncstore:///key`` for the store given as ``store=``.

    Args:
        store: A configured store name, a store URL (``s3://bucket/prefix?...``, ``fs:///srv``),
            or an open `StorageModule` (which the caller keeps and closes, and which must be
            usable on this filesystem's event loop).
        config: The config file that names the stores; found as the CLI finds it when omitted.
        block_size: Bytes fetched per read and buffered per chunk while writing (8 MiB).
        asynchronous: Use from async code (``await fs._cat_file(...)``, `open_async`).
        loop: The event loop of a blocking filesystem; fsspec's IO thread by default.
        batch_size: How many operations bulk calls run at once (fsspec's default).
        **kwargs: fsspec's filesystem options (``skip_instance_cache``...).
    """

    protocol: ClassVar[tuple[str, ...]] = (PROTOCOL,)
    root_marker = ""
    sep = "/"

    def __init__(
        self,
        store: str | StorageModule | None = None,
        *,
        config: str | os.PathLike[str] | None = None,
        block_size: int | None = None,
        asynchronous: bool = False,
        loop: asyncio.AbstractEventLoop | None = None,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        if store is None:
            raise ConfigError(
                "the asyncstore filesystem needs a store: a URL asyncstore://STORE/path naming "
                "a configured store, or store= a store name, URL or module"
            )
        if not isinstance(store, (str, StorageModule)):
            raise ConfigError(f"store must be a store name, a URL or a module, not {store!r}")
        super().__init__(asynchronous=asynchronous, loop=loop, batch_size=batch_size, **kwargs)
        self.blocksize = block_size or DEFAULT_BLOCK_SIZE
        self._config = config
        self._spec = store if isinstance(store, str) else None
        # A config name can stand in URLs (asyncstore://NAME/key); a URL spec cannot.
        self._url_name = self._spec if self._spec and "://" not in self._spec else None
        self._holder = _Holder(
            store if isinstance(store, StorageModule) else None, self._spec is not None
        )
        self._opening: asyncio.Lock | None = None
        # Instance paths are checked against this filesystem's store (see _strip_own).
        self._strip_protocol = self._strip_own  # type: ignore[method-assign]
        weakref.finalize(self, _close_on_loop, self._holder)

    # ---- paths -----------------------------------------------------------------------------

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        return strip_path(os.fspath(path))

    def _strip_own(self, path: Any) -> Any:
        if isinstance(path, list):
            return [self._strip_own(p) for p in path]
        name, _ = split_url(os.fspath(path))
        if name is not None and name != self._url_name:
            raise ValueError(
                f"{path!r} names store {name!r}, but this filesystem is for "
                f"{self._url_name or 'the store it was given'!r}"
            )
        return strip_path(os.fspath(path))

    @staticmethod
    def _get_kwargs_from_urls(path: str) -> dict[str, Any]:
        name, _ = split_url(path)
        return {} if name is None else {"store": name}

    def unstrip_protocol(self, name: str) -> str:
        """Return the URL of a path: ``asyncstore://STORE/key``, or ``asyncstore:///key``."""
        return f"{PROTOCOL}://{self._url_name or ''}/{self._strip_own(name)}"

    # ---- the store -------------------------------------------------------------------------

    async def _store(self) -> StorageModule:
        """Return the store, opening it on the running loop on first use."""
        holder = self._holder
        if holder.module is not None and holder.opened:
            return holder.module
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if holder.module is None or not holder.opened:
                from asyncstore.config import open_store

                assert self._spec is not None
                module = open_store(self._spec, config=self._config)
                await module.__aenter__()
                holder.module, holder.opened = module, True
                holder.loop = asyncio.get_running_loop()
        assert holder.module is not None
        return holder.module

    def _store_now(self) -> StorageModule:
        """Return the store from blocking code (opening it if needed)."""
        return self._sync(self._store)  # type: ignore[no-any-return]

    def _sync(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run an async method on this filesystem's loop and wait for it (blocking code)."""
        return sync(self.loop, function, *args, **kwargs)

    async def _close(self) -> None:
        """Close the store this filesystem opened (a store given as a module is left open)."""
        holder = self._holder
        if not holder.owned:
            return
        module, holder.module = holder.module, None
        holder.opened = False
        if module is not None:
            await module.aclose()

    def close(self) -> None:
        """Close the store this filesystem opened; a later call opens it again."""
        self._sync(self._close)

    async def _capabilities(self) -> dict[str, Any]:
        """Return the store's capabilities (opening the store if needed)."""
        return (await self._store()).capabilities()

    def capabilities(self) -> dict[str, Any]:
        """Return the store's capabilities (``conditional_create``...), from blocking code."""
        return self._sync(self._capabilities)  # type: ignore[no-any-return]

    # ---- describing --------------------------------------------------------------------------

    async def _info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        key = self._strip_protocol(path)
        if not key:
            return directory_entry("")
        store = await self._store()
        try:
            return file_entry(await store.stat(key), key)
        except NotFoundError:
            if await self._has_children(store, key):
                return directory_entry(key)
            raise

    async def _has_children(self, store: StorageModule, key: str) -> bool:
        listing = store.list(f"{key}/")
        try:
            async for _ in listing:
                return True
            return False
        finally:
            # Stop the listing now rather than when it is collected (it may hold a client).
            close = getattr(listing, "aclose", None)
            if close is not None:
                await close()

    async def _ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        key = self._strip_protocol(path)
        store = await self._store()
        entries = tree_entries(
            [info async for info in store.list(f"{key}/" if key else "")], key, maxdepth=1
        )
        if not entries and key:
            entries = {key: file_entry(await store.stat(key), key)}
        return list(entries.values()) if detail else list(entries)

    async def _find(
        self,
        path: str,
        maxdepth: int | None = None,
        withdirs: bool = False,
        detail: bool = False,
        prefix: str = "",
        **kwargs: Any,
    ) -> Any:
        if maxdepth is not None and maxdepth < 1:
            raise ValueError("maxdepth must be at least 1")
        key = self._strip_protocol(path)
        store = await self._store()
        lead = f"{key}/" if key else ""
        infos = [info async for info in store.list(lead + prefix)]
        entries = tree_entries(infos, key, maxdepth=maxdepth, directories=withdirs)
        if key and not infos:
            with contextlib.suppress(NotFoundError):
                entries = {key: file_entry(await store.stat(key), key)}
        elif key and withdirs and not prefix:
            entries = {key: directory_entry(key), **entries}
        entries = dict(sorted(entries.items()))
        return entries if detail else list(entries)

    async def _du(
        self, path: str, total: bool = True, maxdepth: int | None = None, **kwargs: Any
    ) -> Any:
        found = await self._find(path, maxdepth=maxdepth, detail=True, **kwargs)
        sizes = {name: entry["size"] for name, entry in found.items()}
        return sum(sizes.values()) if total else sizes

    async def _modified(self, path: str) -> Any:
        entry = await self._info(path)
        if "LastModified" not in entry:
            raise UnsupportedError("the store reports no modification time", handle=path)
        return entry["LastModified"]

    async def _mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        """Do nothing: directories exist while keys below them do."""

    async def _makedirs(self, path: str, exist_ok: bool = False) -> None:
        """Do nothing: directories exist while keys below them do."""

    def invalidate_cache(self, path: str | None = None) -> None:
        """Do nothing: listings are never cached, so they are never stale."""

    # ---- reading -----------------------------------------------------------------------------

    async def _cat_file(
        self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any
    ) -> bytes:
        key = self._strip_protocol(path)
        store = await self._store()
        if (start is not None and start < 0) or (end is not None and end < 0):
            size = (await store.stat(key)).size
            start = None if start is None else max(0, size + start if start < 0 else start)
            end = None if end is None else max(0, size + end if end < 0 else end)
        first = start or 0
        if end is not None and end <= first:
            await store.stat(key)  # a missing file is still an error
            return b""
        async with await store.get_read_stream(key, start=first, end=end) as stream:
            return await stream.read()

    async def _read_range(self, path: str, start: int, end: int, etag: str | None) -> bytes:
        """Read ``[start, end)`` of a file opened at version ``etag`` (for the file objects)."""
        if end <= start:
            return b""
        store = await self._store()
        if_match = etag if etag and store.capabilities().get("conditional_read") else None
        async with await store.get_read_stream(
            self._strip_protocol(path), start=start, end=end, if_match=if_match
        ) as stream:
            return await stream.read()

    async def _open_stream(self, path: str, etag: str | None, start: int = 0) -> ReadStream:
        """Open a stream from ``start`` to the end of a file opened at version ``etag``."""
        store = await self._store()
        if_match = etag if etag and store.capabilities().get("conditional_read") else None
        return await store.get_read_stream(
            self._strip_protocol(path), start=start, if_match=if_match
        )

    async def _get_file(
        self, rpath: str, lpath: str, callback: Callback = DEFAULT_CALLBACK, **kwargs: Any
    ) -> None:
        key = self._strip_protocol(rpath)
        store = await self._store()
        try:
            stream = await store.get_read_stream(key)
        except NotFoundError:
            if await self._has_children(store, key):
                await anyio.Path(lpath).mkdir(parents=True, exist_ok=True)
                return
            raise
        async with stream:
            callback.set_size(stream.size)
            try:
                async with await anyio.open_file(lpath, "wb") as file:
                    async for chunk in stream:
                        await file.write(chunk)
                        callback.relative_update(len(chunk))
            except BaseException:
                with contextlib.suppress(OSError):
                    await anyio.Path(lpath).unlink()
                raise

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> StoreFile:
        return StoreFile(
            self,
            self._strip_protocol(path),
            mode,
            block_size=block_size or self.blocksize,
            autocommit=autocommit,
            cache_options=cache_options,
            **kwargs,
        )

    async def open_async(self, path: str, mode: str = "rb", **kwargs: Any) -> StoreStreamedFile:
        """Open a file for async code: ``async with await fs.open_async(path, "wb") as f``."""
        if "b" not in mode or kwargs.get("compression"):
            raise ValueError("open_async opens binary files without compression")
        key = self._strip_protocol(path)
        size = etag = None
        if mode == "rb":
            entry = await self._info(key)
            if entry["type"] != "file":
                raise IsADirectoryError(key)
            size, etag = entry["size"], entry.get("ETag")
        elif mode == "xb":
            await self._check_create(key)
        return StoreStreamedFile(
            self,
            key,
            mode,
            size=size,
            etag=etag,
            block_size=kwargs.get("block_size"),
            content_type=kwargs.get("content_type"),
        )

    # ---- writing -----------------------------------------------------------------------------

    async def _require_create(self, path: str) -> None:
        """Refuse exclusive creation, before any I/O, where the store cannot create atomically."""
        store = await self._store()
        if not store.capabilities().get("conditional_create"):
            raise UnsupportedError(
                "exclusive creation (mode 'x' / mode='create') needs a store that creates "
                "objects conditionally, and this one declares conditional_create False",
                store=store.name,
                handle=path,
            )

    async def _check_create(self, path: str) -> None:
        """Refuse an exclusive create early, when it cannot succeed (see `_require_create`)."""
        await self._require_create(path)
        if await self._exists(path):
            raise FileExistsError(path)

    async def _put_bytes(self, path: str, data: bytes, options: dict[str, Any]) -> str:
        store = await self._store()
        return await store.put(data, key=self._strip_protocol(path), **options)

    async def _pipe_file(
        self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any
    ) -> None:
        key = self._strip_protocol(path)
        options = {"content_type": kwargs.get("content_type") or guess_content_type(key)}
        if mode == "create":
            await self._require_create(key)
            options["overwrite"] = False
        elif mode != "overwrite":
            raise ValueError(f"mode must be 'overwrite' or 'create', not {mode!r}")
        await self._put_bytes(key, value, options)

    async def _put_file(
        self,
        lpath: str,
        rpath: str,
        callback: Callback = DEFAULT_CALLBACK,
        mode: str = "overwrite",
        **kwargs: Any,
    ) -> None:
        if await anyio.Path(lpath).is_dir():
            return  # directories are implied by the keys below them
        key = self._strip_protocol(rpath)
        options: dict[str, Any] = {
            "content_type": kwargs.get("content_type") or guess_content_type(key)
        }
        if mode == "create":
            await self._require_create(key)
            options["overwrite"] = False
        store = await self._store()
        file = await anyio.to_thread.run_sync(open, lpath, "rb")
        try:
            callback.set_size(os.fstat(file.fileno()).st_size)
            await store.put(_Progress(file, callback), key=key, **options)
        finally:
            await anyio.to_thread.run_sync(file.close)

    async def _cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        store = await self._store()
        await store.copy(self._strip_protocol(path1), key=self._strip_protocol(path2))

    async def _rm_file(self, path: str, **kwargs: Any) -> None:
        key = self._strip_protocol(path)
        if not key:
            return
        store = await self._store()
        try:
            await store.delete(key)
        except StorageError:
            # A store on a real filesystem may refuse to delete a key that is a directory
            # there; a directory here is only the keys below it, so there is nothing to do.
            if not await self._has_children(store, key):
                raise

    async def _rm(
        self,
        path: Any,
        recursive: bool = False,
        maxdepth: int | None = None,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        names = await self._expand_path(path, recursive=recursive, maxdepth=maxdepth)
        # Directories the expansion lists by their children are not objects: skip them.
        parents = {name.rpartition("/")[0] for name in names}
        files = [name for name in names if name not in parents]
        await _run_coros_in_chunks(
            [self._rm_file(name) for name in files],
            batch_size=batch_size or self.batch_size,
            nofiles=True,
        )
