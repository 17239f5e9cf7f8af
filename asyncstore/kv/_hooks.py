"""Calling the author's hooks of a simple store: counted, translated, refused once closed."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterator, Callable
from errno import EDQUOT, ENOSPC
from typing import Any

import anyio

from asyncstore.errors import (
    PermissionDeniedError,
    StorageError,
    StorageFullError,
    TransientError,
)
from asyncstore.kv._record import Expected
from asyncstore.module import StorageModule

__all__ = ["HookCaller"]


class HookCaller(StorageModule):
    """Calls the hooks (``_get``, ``_set``, ``_delete``, ``_scan``, ``_open``, ``_close``).

    The two public bases say how a hook is called (awaited, or in a worker thread); this class
    keeps count of the calls in flight, so that `aclose` can wait for them, refuses calls once
    closed, and turns what a hook raises into asyncstore errors.
    """

    # Lifecycle state, as class defaults so that an author's __init__ need not call ours.
    _kv_closed: bool = False
    _kv_active: int = 0
    _kv_idle: anyio.Event | None = None

    # ---- what the two public bases provide -------------------------------------------------

    @abstractmethod
    async def _kv_hook(
        self, function: Callable[..., Any], *args: Any, write: bool, **kwargs: Any
    ) -> Any:
        """Call one of the author's hooks (``_get``, ``_set``, ...), opening the store first.

        ``write`` marks a call that changes the store: it must run to completion once started.
        """

    @abstractmethod
    def _kv_batches(self, prefix: str) -> Callable[[], Any]:
        """Return a function that, called through `_kv_hook`, returns the next `_scan` pairs.

        It returns a list of up to a few hundred ``(key, record)`` pairs, empty at the end.
        """

    @abstractmethod
    async def _kv_close(self) -> None:
        """Call the author's ``_close`` hook if the store was opened."""

    # ---- calling the hooks -----------------------------------------------------------------

    def _kv_check_open(self) -> None:
        if self._kv_closed:
            raise StorageError("the module is closed", store=self.name)

    def _translate_error(self, exc: Exception, key: str | None) -> StorageError:
        """Return the asyncstore error for an exception a hook raised (chained by the caller).

        Override to map your client's errors precisely; the default knows the builtin ones.
        """
        where: dict[str, Any] = {"store": self.name, "handle": key}
        text = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, PermissionError):
            return PermissionDeniedError(text, **where)
        if isinstance(exc, (TimeoutError, ConnectionError)):
            return TransientError(text, **where)
        if isinstance(exc, OSError) and exc.errno in (ENOSPC, EDQUOT):
            return StorageFullError(text, **where)
        return StorageError(text, **where)

    async def _kv_run(
        self,
        key: str | None,
        hook: str | Callable[..., Any],
        *args: Any,
        write: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Call a hook (by name), keeping count of calls in flight, translating its errors."""
        self._kv_check_open()
        function = getattr(self, hook) if isinstance(hook, str) else hook
        self._kv_active += 1
        try:
            return await self._kv_hook(function, *args, write=write, **kwargs)
        except StorageError:
            raise
        except Exception as exc:
            raise self._translate_error(exc, key) from exc
        finally:
            self._kv_active -= 1
            if self._kv_idle is not None and not self._kv_active:
                self._kv_idle.set()

    async def _kv_get(self, key: str, start: int, end: int) -> tuple[str, bytes] | None:
        found = await self._kv_run(key, "_get", key, start, end)
        if found is None:
            return None
        record, data = found
        # Some stores give NULL for a range of an empty value (SQLite's substr does).
        return record, b"" if data is None else data

    async def _kv_current(self, key: str) -> str | None:
        found = await self._kv_get(key, 0, 0)
        return None if found is None else found[0]

    async def _kv_write(self, name: str, key: str, *args: Any, expected: Expected | None) -> bool:
        """Call `_set` or `_delete`; return False if its condition failed."""
        if expected is None:
            await self._kv_run(key, name, key, *args, write=True)
            return True
        done = await self._kv_run(key, name, key, *args, write=True, expected=expected)
        return done is not False

    async def _kv_pairs(self, prefix: str) -> AsyncIterator[tuple[str, str]]:
        """Yield the author's `_scan` pairs, fetched in batches."""
        next_batch = self._kv_batches(prefix)
        while batch := await self._kv_run(None, next_batch):
            for pair in batch:
                yield pair

    # ---- lifecycle -------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the store: wait for the calls in flight, then run the author's `_close`.

        Closing twice is harmless; every other call afterwards raises `StorageError`.
        """
        if self._kv_closed:
            return
        self._kv_closed = True
        with anyio.CancelScope(shield=True):
            while self._kv_active:
                self._kv_idle = anyio.Event()
                await self._kv_idle.wait()
            await self._kv_close()
