"""`FilesystemDriver`: one fsspec filesystem, called natively if async, else in worker threads.

The filesystem is created on first use: an async one (s3fs, gcsfs, http) on the running event
loop with ``asynchronous=True``, so its client belongs to that loop; a blocking one (local,
memory, sftp) in a worker thread, since constructing it may already connect. Errors are
translated to asyncstore's at this boundary, chained to the original.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import anyio
import anyio.to_thread

from asyncstore.errors import (
    AlreadyExistsError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
    StorageFullError,
    TransientError,
    UnsupportedError,
)

__all__ = ["FilesystemDriver", "map_fs_errors"]

_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


@contextlib.contextmanager
def map_fs_errors(store: str, handle: str | None) -> Iterator[None]:
    """Translate what a filesystem raises into the most specific `StorageError`."""
    try:
        yield
    except StorageError:
        raise
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        raise NotFoundError("no such object", store=store, handle=handle) from exc
    except FileExistsError as exc:
        raise AlreadyExistsError("the object exists", store=store, handle=handle) from exc
    except PermissionError as exc:
        raise PermissionDeniedError(
            "the filesystem refused the operation", store=store, handle=handle
        ) from exc
    except (TimeoutError, ConnectionError) as exc:
        raise TransientError(
            f"the filesystem timed out or lost its connection: {type(exc).__name__}",
            store=store,
            handle=handle,
        ) from exc
    except NotImplementedError as exc:
        raise UnsupportedError(
            "the filesystem does not implement this operation", store=store, handle=handle
        ) from exc
    except OSError as exc:
        if exc.errno in _FULL:
            raise StorageFullError("the filesystem is full", store=store, handle=handle) from exc
        raise StorageError(
            f"the filesystem failed: {exc.strerror or type(exc).__name__}",
            store=store,
            handle=handle,
        ) from exc


class FilesystemDriver:
    """Creates, calls and closes one fsspec filesystem.

    Args:
        cls: The filesystem class (``fsspec.get_filesystem_class(protocol)``).
        options: Its constructor options.
        store: The store name, for messages.
    """

    def __init__(self, cls: type[Any], options: Mapping[str, Any], store: str) -> None:
        self.cls = cls
        self.is_async = bool(getattr(cls, "async_impl", False))
        self.store = store
        self._options = dict(options)
        self._fs: Any = None
        self._lock: anyio.Lock | None = None

    async def filesystem(self) -> Any:
        """Return the filesystem, creating it on first use."""
        if self._fs is not None:
            return self._fs
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if self._fs is None:
                self._fs = await self._create()
        return self._fs

    async def _create(self) -> Any:
        with map_fs_errors(self.store, None):
            if not self.is_async:
                create: Callable[..., Any] = self.cls
                return await anyio.to_thread.run_sync(
                    functools.partial(create, skip_instance_cache=True, **self._options)
                )
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                raise UnsupportedError(
                    f"{self.cls.__name__} is an async fsspec filesystem, which runs on asyncio "
                    "only",
                    store=self.store,
                ) from None
            fs = self.cls(asynchronous=True, skip_instance_cache=True, **self._options)
            set_session = getattr(fs, "set_session", None)
            if set_session is not None:
                await set_session()
            return fs

    async def call(self, name: str, *args: Any, handle: str | None = None, **kwargs: Any) -> Any:
        """Call the filesystem method ``name`` (its ``_name`` coroutine if async)."""
        fs = await self.filesystem()
        with map_fs_errors(self.store, handle):
            if self.is_async:
                return await getattr(fs, f"_{name}")(*args, **kwargs)
            return await anyio.to_thread.run_sync(
                functools.partial(getattr(fs, name), *args, **kwargs)
            )

    async def run(
        self, function: Callable[..., Any], *args: Any, handle: str | None = None, **kwargs: Any
    ) -> Any:
        """Run a blocking callable (a method of an open file) in a worker thread."""
        with map_fs_errors(self.store, handle):
            return await anyio.to_thread.run_sync(functools.partial(function, *args, **kwargs))

    async def aclose(self) -> None:
        """Release the filesystem's connections (what fsspec's implementations offer for it)."""
        fs, self._fs = self._fs, None
        if fs is None:
            return
        with contextlib.suppress(Exception):
            if self.is_async:
                # s3fs keeps its aiobotocore client in _s3, HTTP-based filesystems an aiohttp
                # session in _session; fsspec has no common close.
                client = getattr(fs, "_s3", None)
                if client is not None:
                    await client.__aexit__(None, None, None)
                session = getattr(fs, "_session", None)
                if session is not None and hasattr(session, "close"):
                    await session.close()
            else:
                close = getattr(fs, "close", None)
                if callable(close):
                    await anyio.to_thread.run_sync(close)
