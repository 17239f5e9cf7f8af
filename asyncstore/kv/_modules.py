"""The two bases for simple stores: hooks that are awaited, and hooks run in worker threads."""

from __future__ import annotations

import sys
import threading
from abc import abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from itertools import islice
from typing import Any, ClassVar

import anyio
import anyio.to_thread

from asyncstore.kv._base import KeyValueBase

__all__ = ["BlockingKeyValueModule", "KeyValueModule"]

_BATCH = 256
"""How many ``(key, record)`` pairs one call takes from `_scan`."""


def _overrides(cls: type, name: str, base: type) -> bool:
    return getattr(cls, name) is not getattr(base, name)


class KeyValueModule(KeyValueBase):
    """The base of a storage module over a key-value store with an async client.

    Implement four async hooks; the base supplies the rest of the contract (streams and
    ranged reads, every byte source, ``new_data``/``assign``, ``stat``, ordered listing,
    ``copy``, statistics, validation, capabilities, the lifecycle):

    - ``await _get(key, start, end)`` -> ``(record, value[start:end])``, or None if absent.
      ``end`` may lie past the end of the value.
    - ``await _set(key, value, record)``: store ``value`` (bytes) and ``record`` (str) under
      ``key`` in one atomic step. Give it an ``expected: Expected | None = None`` parameter,
      and return False without writing when ``expected`` is given and the record stored now is
      not ``expected.record`` (None: no object), to offer ``overwrite=False`` and ``if_match``.
    - ``await _delete(key)``: delete; a missing key is fine. An ``expected`` parameter, as for
      ``_set``, offers ``delete(if_match=)``.
    - ``_scan(prefix)``: an async iterator of ``(key, record)`` for every key that starts with
      ``prefix``, in code-point order.

    Optional: ``await _open()`` runs once before the first hook (connect there, not in
    ``__init__``), and ``await _close()`` once on `aclose` if the store was opened. A hook
    that writes is shielded from cancellation once called, so a cancelled task never leaves a
    write half done; its exceptions become asyncstore errors (see `_translate_error`).
    """

    _kv_opened: bool = False
    _kv_opening: anyio.Event | None = None

    @abstractmethod
    async def _get(self, key: str, start: int, end: int) -> tuple[str, bytes] | None:
        """Return the record and the bytes ``[start, end)`` of the value, or None if absent."""

    @abstractmethod
    async def _set(self, key: str, value: bytes, record: str) -> bool | None:
        """Store the value and its record under ``key`` atomically (see the class docstring)."""

    @abstractmethod
    async def _delete(self, key: str) -> bool | None:
        """Delete the key's value and record; a missing key is not an error."""

    @abstractmethod
    def _scan(self, prefix: str) -> AsyncIterator[tuple[str, str]]:
        """Yield ``(key, record)`` for the keys starting with ``prefix``, in code-point order."""

    async def _open(self) -> None:
        """Connect to the store; called once, before the first hook."""

    async def _close(self) -> None:
        """Disconnect; called once by `aclose` if the store was opened."""

    async def _kv_ensure_open(self) -> None:
        while not self._kv_opened:
            if self._kv_opening is not None:  # another task is opening: wait for it
                await self._kv_opening.wait()
                continue
            self._kv_opening = opening = anyio.Event()
            try:
                await self._open()
                self._kv_opened = True
            finally:
                self._kv_opening = None
                opening.set()

    async def _kv_hook(
        self, function: Callable[..., Any], *args: Any, write: bool, **kwargs: Any
    ) -> Any:
        await self._kv_ensure_open()
        if not write:
            return await function(*args, **kwargs)
        with anyio.CancelScope(shield=True):
            return await function(*args, **kwargs)

    def _kv_batches(self, prefix: str) -> Callable[[], Any]:
        iterator: AsyncIterator[tuple[str, str]] | None = None

        async def next_batch() -> list[tuple[str, str]]:
            nonlocal iterator
            if iterator is None:
                iterator = aiter(self._scan(prefix))
            batch: list[tuple[str, str]] = []
            while len(batch) < _BATCH and (pair := await anext(iterator, None)) is not None:
                batch.append(pair)
            return batch

        return next_batch

    async def _kv_close(self) -> None:
        if self._kv_opened or not _overrides(type(self), "_open", KeyValueModule):
            await self._close()


class BlockingKeyValueModule(KeyValueBase):
    """The base of a storage module over a key-value store with a blocking client.

    The same hooks as `KeyValueModule` (``_get``, ``_set``, ``_delete``, ``_scan``, and the
    optional ``_open``/``_close``), written as plain functions: the base runs each in a worker
    thread, so the event loop never blocks. ``_scan`` returns a plain iterable.

    Threads: at most `max_threads` hooks of one module run at once, in anyio's worker
    threads; with the default of 1 they never overlap, so a connection that is not thread-safe
    (``sqlite3`` opened with ``check_same_thread=False``) needs no lock. Raise it only for a
    thread-safe client. A hook, once started, runs to completion even if the calling task is
    cancelled (the cancellation takes effect at its next checkpoint), so no write is left half
    done.

    Class attributes a subclass may set:
        max_threads: How many hooks may run at once (default 1).
    """

    max_threads: ClassVar[int] = 1

    _kv_opened: bool = False
    _kv_limiters: tuple[object, anyio.CapacityLimiter] | None = None

    @abstractmethod
    def _get(self, key: str, start: int, end: int) -> tuple[str, bytes] | None:
        """Return the record and the bytes ``[start, end)`` of the value, or None if absent."""

    @abstractmethod
    def _set(self, key: str, value: bytes, record: str) -> bool | None:
        """Store the value and its record under ``key`` atomically (see `KeyValueModule`)."""

    @abstractmethod
    def _delete(self, key: str) -> bool | None:
        """Delete the key's value and record; a missing key is not an error."""

    @abstractmethod
    def _scan(self, prefix: str) -> Iterable[tuple[str, str]]:
        """Return ``(key, record)`` for the keys starting with ``prefix``, in code-point order."""

    def _open(self) -> None:
        """Connect to the store; called once, in a worker thread, before the first hook."""

    def _close(self) -> None:
        """Disconnect; called once by `aclose`, in a worker thread, if the store was opened."""

    def _kv_limiter(self) -> anyio.CapacityLimiter:
        # A limiter belongs to one event loop: a module used from a second loop (another
        # anyio.run) gets a new one.
        loop = _running_loop()
        if self._kv_limiters is None or self._kv_limiters[0] is not loop:
            self._kv_limiters = (loop, anyio.CapacityLimiter(self.max_threads))
        return self._kv_limiters[1]

    def _kv_ensure_open(self) -> None:
        lock = self.__dict__.setdefault("_kv_open_lock", threading.Lock())
        with lock:
            if not self._kv_opened:
                self._open()
                self._kv_opened = True

    async def _kv_hook(
        self, function: Callable[..., Any], *args: Any, write: bool, **kwargs: Any
    ) -> Any:
        def call() -> Any:
            if not self._kv_opened:
                self._kv_ensure_open()
            return function(*args, **kwargs)

        # Not abandoned on cancellation: the thread's call always completes before we return.
        return await anyio.to_thread.run_sync(call, limiter=self._kv_limiter())

    def _kv_batches(self, prefix: str) -> Callable[[], Any]:
        iterator: Iterator[tuple[str, str]] | None = None

        def next_batch() -> list[tuple[str, str]]:
            nonlocal iterator
            if iterator is None:
                iterator = iter(self._scan(prefix))
            return list(islice(iterator, _BATCH))

        return next_batch

    async def _kv_close(self) -> None:
        if self._kv_opened or not _overrides(type(self), "_open", BlockingKeyValueModule):
            await anyio.to_thread.run_sync(self._close, limiter=self._kv_limiter())


def _running_loop() -> object:
    """Return an object that identifies the running event loop (asyncio's loop, trio's token)."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None:
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            pass
    trio = sys.modules.get("trio")
    return None if trio is None else trio.lowlevel.current_trio_token()
