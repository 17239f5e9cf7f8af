"""The replicate middleware: writes go to a primary and its replicas; reads fall back.

Every write goes to the primary first (so the primary's atomicity applies to the caller's
source, which is read once), then is copied from the primary to each replica:

* ``mode = "all"`` (all-or-fail): the replicas are filled before `put` returns, concurrently;
  if any replica fails, `put` raises its error. The new version stays on the primary and on
  the replicas that succeeded (an older version cannot be restored), and `repair` fills the
  rest later.
* ``mode = "background"``: `put` returns once the primary has the object; the handle joins a
  bounded queue that a task drains: start `run` in a task group you own (a library cannot
  leave tasks running by itself under structured concurrency). Without it, or when the queue
  is full, the writer drains the queue itself, so the bound always holds. `flush` drains it
  on demand and `aclose` drains it before closing. Failed fills are counted and kept for
  `repair`.

Reads, `stat` and `get_size` use the primary and fall back to the replicas in order when the
primary misses the object or fails. Deletes go to every store. `copy` copies on the primary,
and on each replica that already has the source (`available`) copies there too, server-side,
instead of sending the bytes again. `repair` walks the primary and copies what replicas lack,
skipping objects a replica already has at the same size.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

import anyio

# Imported at run time: the registry reads the constructor's annotations to convert options.
from asyncstore.context import ModuleContext
from asyncstore.errors import (
    ConfigError,
    InvalidKeyError,
    InvalidRangeError,
    NotFoundError,
    StorageError,
)
from asyncstore.info import ObjectInfo
from asyncstore.keys import validate_key
from asyncstore.middleware._base import WrapperModule, resolve_inner
from asyncstore.module import StorageModule
from asyncstore.streams import ByteSource, ReadStream, check_range

__all__ = ["ReplicationModule"]

T = TypeVar("T")
_MISUSE = (InvalidKeyError, InvalidRangeError, TypeError)


@dataclass(frozen=True)
class _Failed:
    error: BaseException


class ReplicationModule(WrapperModule):
    """Writes every object to a primary store and to replicas; reads fall back to replicas.

    Args:
        primary: The authoritative store: a store name or URL (or a module).
        replicas: The replica stores: a list of names or URLs, or one comma-separated string.
        mode: ``"all"`` to fill every replica before a write returns (and fail if one
            fails), or ``"background"`` to fill them from a bounded queue.
        queue_size: How many handles the background queue holds before writers wait.
    """

    LAYER: ClassVar[str] = "replicate"

    def __init__(
        self,
        *,
        primary: str | StorageModule,
        replicas: str | Sequence[str | StorageModule],
        mode: str = "all",
        queue_size: int = 1000,
        context: ModuleContext | None = None,
    ) -> None:
        if mode not in ("all", "background"):
            raise ConfigError(f"mode must be 'all' or 'background', not {mode!r}")
        if not isinstance(queue_size, int) or queue_size < 1:
            raise ConfigError(f"queue_size must be an int >= 1, not {queue_size!r}")
        names = (
            [part.strip() for part in replicas.split(",") if part.strip()]
            if isinstance(replicas, str)
            else list(replicas)
        )
        if not names:
            raise ConfigError("the replicate module needs at least one replica")
        super().__init__(resolve_inner(primary, context))
        self._replicas = [resolve_inner(name, context) for name in names]
        self._mode: Literal["all", "background"] = "all" if mode == "all" else "background"
        self._queue_size = queue_size
        self._queue: dict[str, None] = {}  # an ordered set: a handle queued twice fills once
        self._queued = anyio.Event()
        self._room = anyio.Event()
        self._runner = False
        self._failed: dict[str, None] = {}
        self._counts = {"filled": 0, "skipped": 0, "failed": 0}
        self._logger = context.logger if context is not None else logging.getLogger("asyncstore")

    @property
    def primary(self) -> StorageModule:
        """The authoritative store."""
        return self._inner

    @property
    def replicas(self) -> builtins.list[StorageModule]:
        """The replica stores, in fallback order."""
        return list(self._replicas)

    def _stores(self) -> builtins.list[StorageModule]:
        return [self._inner, *self._replicas]

    # ---- writing -------------------------------------------------------------------------

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
        """Store on the primary, then on the replicas as the mode says.

        The primary alone decides a condition; the replicas then follow it.
        """
        meta, ctype = self._check_write(handle, metadata, content_type, overwrite, if_match)
        etag = await self._inner.assign(
            handle,
            source,
            metadata=meta,
            content_type=ctype,
            overwrite=overwrite,
            if_match=if_match,
        )
        await self._replicate(handle)
        return etag

    async def _replicate(self, handle: str) -> None:
        if self._mode == "all":
            errors: builtins.list[BaseException] = []

            async def fill(replica: StorageModule) -> None:
                try:
                    await self._fill(replica, handle)
                except Exception as exc:
                    errors.append(exc)

            async with anyio.create_task_group() as group:
                for replica in self._replicas:
                    group.start_soon(fill, replica)
            if errors:
                self._remember_failure(handle)
                raise errors[0]
            return
        await self._enqueue(handle)

    async def _fill(self, replica: StorageModule, handle: str) -> None:
        """Copy the primary's current version of ``handle`` to ``replica``."""
        try:
            stream = await self._inner.get_read_stream(handle)
        except NotFoundError:
            # Deleted since it was queued: make sure the replica does not keep it either.
            await replica.delete(handle)
            return
        async with stream:
            info = stream.info
            await replica.assign(
                handle, stream, metadata=info.metadata, content_type=info.content_type
            )
        self._counts["filled"] += 1
        if not await self._inner.available(handle):
            await replica.delete(handle)  # deleted while we copied: do not resurrect it

    def _remember_failure(self, handle: str) -> None:
        self._counts["failed"] += 1
        self._failed[handle] = None
        while len(self._failed) > self._queue_size:
            self._failed.pop(next(iter(self._failed)))

    # ---- the background queue ------------------------------------------------------------

    async def _enqueue(self, handle: str) -> None:
        while len(self._queue) >= self._queue_size and handle not in self._queue:
            if self._runner:
                self._room = anyio.Event() if self._room.is_set() else self._room
                await self._room.wait()
            else:
                await self._drain_one()
        self._queue[handle] = None
        self._queued.set()

    async def _drain_one(self) -> bool:
        if not self._queue:
            return False
        handle = next(iter(self._queue))
        del self._queue[handle]
        self._room.set()
        try:
            for replica in self._replicas:
                await self._fill_or_remember(replica, handle)
        except BaseException:
            self._queue[handle] = None  # cancelled midway: fill it again later
            raise
        return True

    async def _fill_or_remember(self, replica: StorageModule, handle: str) -> None:
        try:
            await self._fill(replica, handle)
        except Exception as exc:
            self._remember_failure(handle)
            self._logger.warning(
                "replicating %r to %r failed: %s: %s",
                handle,
                replica.name,
                type(exc).__name__,
                exc,
            )

    async def run(self) -> None:
        """Drain the background queue until cancelled; start it in a task group you own."""
        self._runner = True
        try:
            while True:
                if not await self._drain_one():
                    self._queued = anyio.Event()
                    await self._queued.wait()
        finally:
            self._runner = False
            self._room.set()

    async def flush(self) -> None:
        """Fill every replica with what the background queue holds, now."""
        while await self._drain_one():
            pass

    # ---- reading, with fallback ----------------------------------------------------------

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None, if_match: str | None = None
    ) -> ReadStream:
        """Open a stream from the primary, or from the first replica that has the object.

        With ``if_match`` (an etag of the primary's) only the primary is read.
        """
        check_range(start, end, store=self.name)
        self._check_handle(handle)
        self._check_read_condition(if_match)
        if if_match is not None:
            return await self._inner.get_read_stream(
                handle, start=start, end=end, if_match=if_match
            )
        return await self._first(lambda store: store.get_read_stream(handle, start=start, end=end))

    async def stat(self, handle: str) -> ObjectInfo:
        """Describe the object as the primary (or, failing that, a replica) has it."""
        self._check_handle(handle)
        return await self._first(lambda store: store.stat(handle))

    async def available(self, handle: str) -> bool:
        """Return whether the primary or any replica has the object."""
        self._check_handle(handle)

        async def has(store: StorageModule) -> bool:
            if not await store.available(handle):
                raise self._not_found(handle)
            return True

        try:
            return await self._first(has)
        except NotFoundError:
            return False

    async def _first(self, call: Callable[[StorageModule], Awaitable[T]]) -> T:
        """Return ``call`` on the first store that answers; raise the primary's error if none."""
        errors: builtins.list[BaseException] = []
        for store in self._stores():
            outcome = await self._attempt(call, store)
            if not isinstance(outcome, _Failed):
                return outcome
            errors.append(outcome.error)
        raise errors[0]

    async def _attempt(
        self, call: Callable[[StorageModule], Awaitable[T]], store: StorageModule
    ) -> T | _Failed:
        try:
            return await call(store)
        except _MISUSE:
            raise
        except (StorageError, OSError) as exc:
            if not isinstance(exc, NotFoundError):
                self._logger.warning("%r failed: %s", store.name, type(exc).__name__)
            return _Failed(exc)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Yield the primary's objects under ``prefix`` (the primary is authoritative)."""
        async for info in self._inner.list(prefix):
            yield info

    # ---- other operations ----------------------------------------------------------------

    async def delete(self, handle: str, *, if_match: str | None = None) -> None:
        """Delete from the primary and every replica; raise the first failure after trying all.

        With ``if_match`` the primary decides first; the replicas follow only if it deleted.
        """
        self._check_handle(handle)
        self._check_delete_condition(if_match)
        stores = self._stores()
        if if_match is not None:
            await self._inner.delete(handle, if_match=if_match)
            stores = stores[1:]
        self._queue.pop(handle, None)
        errors: builtins.list[BaseException] = []
        for store in stores:
            outcome = await self._attempt(lambda store: store.delete(handle), store)
            if isinstance(outcome, _Failed):
                errors.append(outcome.error)
        if errors:
            raise errors[0]

    async def copy(
        self,
        handle: str,
        *,
        key: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str:
        """Copy on the primary; replicas that have the source copy server-side too.

        The primary alone decides a condition on the destination.
        """
        self._check_handle(handle)
        conditions = self._write_conditions(overwrite, if_match)
        if key is not None:
            validate_key(key, store=self.name)
        try:
            target = await self._inner.copy(handle, key=key, **conditions)
        except NotFoundError:
            # The primary lost the source: copy from whichever replica still has it.
            return await super().copy(handle, key=key, **conditions)
        pending = []
        for replica in self._replicas:
            try:
                if await replica.available(handle):
                    await replica.copy(handle, key=target)
                    self._counts["skipped"] += 1
                    continue
            except Exception as exc:
                self._logger.warning(
                    "copy on %r failed: %s; sending the bytes", replica.name, type(exc).__name__
                )
            pending.append(replica)
        if pending:
            if self._mode == "all":
                for replica in pending:
                    await self._fill(replica, target)
            else:
                await self._enqueue(target)
        return target

    async def repair(self, prefix: str = "") -> dict[str, int]:
        """Copy to each replica what the primary has under ``prefix`` and the replica lacks.

        An object a replica already has (`available`, at the same size) is skipped.

        Returns:
            Counts of objects ``checked``, ``copied``, ``skipped`` and ``failed``.
        """
        counts = {"checked": 0, "copied": 0, "skipped": 0, "failed": 0}
        async for info in self._inner.list(prefix):
            counts["checked"] += 1
            for replica in self._replicas:
                try:
                    if (
                        await replica.available(info.handle)
                        and await replica.get_size(info.handle) == info.size
                    ):
                        counts["skipped"] += 1
                        continue
                    await self._fill(replica, info.handle)
                    counts["copied"] += 1
                except Exception as exc:
                    counts["failed"] += 1
                    self._logger.warning(
                        "repairing %r on %r failed: %s",
                        info.handle,
                        replica.name,
                        type(exc).__name__,
                    )
                else:
                    self._failed.pop(info.handle, None)
        return counts

    # ---- description and lifecycle -------------------------------------------------------

    def capabilities(self) -> dict[str, Any]:
        """Return the primary's capabilities (bytes are not transformed, so presign works)."""
        effective = dict(self._inner.capabilities())
        effective["reconfigure"] = False
        return effective

    async def presign(self, handle: str, *, method: str = "GET", expires: int = 3600) -> str:
        """Presign on the primary."""
        return await self._inner.presign(handle, method=method, expires=expires)

    async def statistics(self) -> dict[str, Any]:
        """Return the effective capacity (the tightest store bounds it) and each store's figures."""
        all_stats = [await store.statistics() for store in self._stores()]
        capacities = [stats.get("capacity", {}) for stats in all_stats]

        def tightest(name: str) -> int | None:
            known = [c[name] for c in capacities if isinstance(c.get(name), int)]
            return min(known) if known else None

        return {
            "capacity": {
                "total": tightest("total"),
                "used": capacities[0].get("used"),
                "free": tightest("free"),
            },
            "inner": all_stats[0],
            "replicas": all_stats[1:],
            self.LAYER: {
                "mode": self._mode,
                "queued": len(self._queue),
                "needs_repair": len(self._failed),
                **self._counts,
            },
        }

    async def aclose(self) -> None:
        """Drain the background queue, then close the primary and the replicas."""
        try:
            with anyio.CancelScope(shield=True):
                await self.flush()
        finally:
            for store in self._stores():
                await store.aclose()
