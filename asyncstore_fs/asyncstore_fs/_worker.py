"""A worker thread that runs queued small blocking calls in bulk.

Handing each small filesystem call to a thread pool costs a thread wake-up and an event-loop
wake-up per call, which is far more than the call itself (a ``stat`` or a 4 KiB read from the
page cache takes microseconds). This worker drains every call queued while it was busy, runs
them back to back, and wakes each waiting event loop once per batch. Under event loops other
than asyncio (trio), calls fall back to `anyio.to_thread.run_sync`.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread

__all__ = ["BulkWorker"]

T = TypeVar("T")

# (function, arguments, future or None, loop or None, called with the result if abandoned)
_Job = tuple[
    Callable[..., Any],
    tuple[Any, ...],
    "asyncio.Future[Any] | None",
    "asyncio.AbstractEventLoop | None",
    "Callable[[Any], object] | None",
]
_Result = tuple["asyncio.Future[Any]", bool, Any, "Callable[[Any], object] | None"]


def _deliver(results: list[_Result]) -> None:
    for future, ok, value, on_abandon in results:
        if future.cancelled():
            # The caller went away: release what the call acquired for it.
            if ok and on_abandon is not None:
                on_abandon(value)
        elif ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def _post(loop: asyncio.AbstractEventLoop, results: list[_Result]) -> None:
    try:
        loop.call_soon_threadsafe(_deliver, results)
    except RuntimeError:  # the loop is closed; nobody is waiting any more
        for _, ok, value, on_abandon in results:
            if ok and on_abandon is not None:
                on_abandon(value)


class BulkWorker:
    """One lazily started thread running queued blocking calls in order, in batches."""

    def __init__(self, name: str = "asyncstore-fs") -> None:
        self._name = name
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def _ensure_started(self) -> None:
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._lock:
            if self._thread is None or self._pid != os.getpid():
                # A forked child has the object but not the thread: start its own.
                self._queue = queue.SimpleQueue()
                self._thread = threading.Thread(target=self._main, name=self._name, daemon=True)
                self._pid = os.getpid()
                self._thread.start()

    async def run(
        self,
        function: Callable[..., T],
        *args: Any,
        on_abandon: Callable[[T], object] | None = None,
    ) -> T:
        """Run ``function(*args)`` in the worker and return its result.

        If the caller is cancelled, the call still runs (a blocking call cannot be stopped);
        ``on_abandon`` is then called with its result so that what it acquired is released.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (trio): no loop to post results to
            return await anyio.to_thread.run_sync(function, *args)
        self._ensure_started()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((function, args, future, loop, on_abandon))
        return await future

    def post(self, function: Callable[..., object], *args: Any) -> None:
        """Queue ``function(*args)`` without waiting for it; it runs after every earlier call.

        Used to release resources that an earlier, possibly still running, call uses. When the
        worker is not running (trio, or never started), the function runs at once.
        """
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            function(*args)
            return
        self._queue.put((function, args, None, None, None))

    def close(self) -> threading.Thread | None:
        """Ask the thread to stop after the queued calls; return it so the caller can join."""
        thread, self._thread = self._thread, None
        if thread is not None and self._pid == os.getpid():
            self._queue.put(None)
            return thread
        return None

    def _main(self) -> None:
        jobs = self._queue
        while True:
            batch = [jobs.get()]
            while not jobs.empty():  # this thread is the only consumer
                batch.append(jobs.get_nowait())
            done: dict[asyncio.AbstractEventLoop, list[_Result]] = {}
            stop = False
            for job in batch:
                if job is None:
                    stop = True
                    continue
                function, args, future, loop, on_abandon = job
                try:
                    value, ok = function(*args), True
                except Exception as exc:
                    value, ok = exc, False
                if future is not None and loop is not None:
                    done.setdefault(loop, []).append((future, ok, value, on_abandon))
            for loop, results in done.items():
                _post(loop, results)
            if stop:
                return
