"""The process-wide event loop thread that runs every `SyncStore`'s modules.

One daemon thread runs an asyncio loop inside an anyio `BlockingPortal` (which owns its
lifetime); it starts on the first blocking call and is shared by every `SyncStore` of the
process. A blocking call hands a coroutine to the loop and waits for its result, so any number
of threads can call at once.

Calls reach the loop through a `CallQueue` (``_handoff``), built for many threads at once.

After ``os.fork()`` the child has no loop thread (only the forking thread survives), so the
child forgets the parent's portal and starts its own on its first call. The parent's loop
object is kept, never closed, in the child: closing it would unregister descriptors from an
epoll instance the parent still uses. At interpreter exit the open stores are closed and the
loop is stopped.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import anyio
from anyio.from_thread import BlockingPortal

from asyncstore.sync._handoff import CallQueue

__all__ = [
    "PORTAL",
    "PortalRunner",
    "before_exit",
    "call",
    "call_soon",
    "check_blocking_allowed",
    "current_loop",
    "current_pid",
    "current_portal",
    "in_loop_thread",
    "shutdown",
]

T = TypeVar("T")

EXIT_TIMEOUT = 5.0
"""How long (seconds) interpreter exit waits for open stores to close and the loop to stop."""


class _LoopThread:
    """One running portal, the thread it runs on, and the queue of calls handed to it."""

    def __init__(self) -> None:
        started: Future[tuple[BlockingPortal, asyncio.AbstractEventLoop]] = Future()
        self.pid = os.getpid()
        self.thread = threading.Thread(
            target=self._run, args=(started,), name="asyncstore-sync-loop", daemon=True
        )
        self.thread.start()
        self.portal, self.loop = started.result()
        self.thread_id = self.thread.ident
        self.calls = CallQueue(self.loop)

    @staticmethod
    def _run(started: Future[tuple[BlockingPortal, asyncio.AbstractEventLoop]]) -> None:
        async def serve() -> None:
            async with BlockingPortal() as portal:
                started.set_result((portal, asyncio.get_running_loop()))
                await portal.sleep_until_stopped()

        try:
            anyio.run(serve, backend="asyncio")
        except BaseException as exc:  # reported to the thread that asked for the loop
            if not started.done():
                started.set_exception(exc)
            raise

    def stop(self, timeout: float) -> None:
        """Stop the loop, cancelling calls still running, and wait for the thread."""
        try:
            future = self.portal.start_task_soon(self.portal.stop, True)
            future.result(timeout)
        except Exception:  # the loop is already gone: nothing to stop
            return
        self.thread.join(timeout)


_lock = threading.Lock()
_current: _LoopThread | None = None
_pid = os.getpid()
_exit_registered = False
_before_exit: list[Callable[[], None]] = []
# Tasks started from the loop thread by `call_soon`, kept until done (the loop holds weak ones).
_finalising: set[asyncio.Future[object]] = set()
# The parent's loop objects, kept alive in a forked child so that they are never finalised.
_inherited: list[_LoopThread] = []


def _loop_thread() -> _LoopThread:
    loop = _current
    if loop is not None:
        return loop
    with _lock:
        if _current is None:
            _start()
        assert _current is not None
        return _current


def current_portal() -> BlockingPortal:
    """Return the running portal of this process, starting its loop thread if needed."""
    return _loop_thread().portal


def _start() -> None:
    global _current, _exit_registered
    _current = _LoopThread()
    if not _exit_registered:  # inherited by a forked child, so registered once per lineage
        atexit.register(_at_exit)
        _exit_registered = True


def current_loop() -> asyncio.AbstractEventLoop | None:
    """Return this process's loop if its thread has started, without starting it."""
    loop = _current
    return None if loop is None else loop.loop


def current_pid() -> int:
    """Return this process's id, as `os.getpid` does, without a system call."""
    return _pid


def in_loop_thread() -> bool:
    """Return whether the calling thread is the loop thread."""
    loop = _current
    return loop is not None and loop.thread_id == threading.get_ident()


def _running_loop() -> str | None:
    # The private getter returns None where get_running_loop would raise (and cost more).
    if asyncio._get_running_loop() is not None:
        return "asyncio"
    trio = sys.modules.get("trio")
    if trio is not None and trio.lowlevel.in_trio_run():
        return "trio"
    return None


def check_blocking_allowed(what: str) -> None:
    """Refuse a blocking call from a thread that runs an event loop.

    Raises:
        RuntimeError: If an event loop is running in the calling thread; blocking it would
            stall every task on it (and deadlock on the loop thread itself).
    """
    library = _running_loop()
    if library is not None:
        raise RuntimeError(
            f"{what} was called from inside a running {library} event loop; a SyncStore "
            "blocks the calling thread, which would stall the loop. In async code use the "
            "module's async API instead (await module.put(...), etc.), or call the SyncStore "
            "from a worker thread (anyio.to_thread.run_sync)."
        )


def call(func: Callable[..., Awaitable[T]], *args: Any, timeout: float | None = None) -> T:
    """Run ``func(*args)`` on the loop thread and return its result, blocking until done.

    An exception raised by the call propagates unchanged, its traceback included (a
    cancellation on the loop as `concurrent.futures.CancelledError`). If the waiting thread
    is interrupted (``KeyboardInterrupt``) or ``timeout`` passes, the call on the loop is
    cancelled.

    Raises:
        RuntimeError: If called from a thread running an event loop.
        TimeoutError: If ``timeout`` (seconds) passes first.
    """
    check_blocking_allowed("a blocking asyncstore call")
    loop = _current
    if loop is None:
        loop = _loop_thread()
    return loop.calls.call(func, args, timeout)


async def _run(func: Callable[..., Awaitable[T]], args: tuple[Any, ...]) -> T:
    return await func(*args)


def call_soon(func: Callable[..., Awaitable[object]], *args: Any) -> None:
    """Start ``func(*args)`` on the loop without waiting; a no-op if that is impossible.

    For finalisers (``__del__``), which run in any thread and must never block.
    """
    loop = _current
    if loop is None or loop.pid != os.getpid():
        return
    if loop.thread_id == threading.get_ident():
        task = asyncio.ensure_future(func(*args))
        _finalising.add(task)
        task.add_done_callback(_finalising.discard)
        return
    with contextlib.suppress(RuntimeError):  # the loop is closing
        asyncio.run_coroutine_threadsafe(_run(func, args), loop.loop)


class PortalRunner:
    """Runs coroutines on the process-wide loop: what `SyncReadStream` and friends call."""

    def call(self, func: Callable[..., Awaitable[T]], /, *args: Any) -> T:
        """Run ``func(*args)`` on the loop and return its result (see `call`)."""
        return call(func, *args)

    def call_soon(self, func: Callable[..., Awaitable[object]], /, *args: Any) -> None:
        """Start ``func(*args)`` on the loop without waiting (see `call_soon`)."""
        call_soon(func, *args)


PORTAL = PortalRunner()
"""The runner of the process-wide loop."""


def before_exit(callback: Callable[[], None]) -> None:
    """Register ``callback`` to run at interpreter exit, before the loop stops."""
    _before_exit.append(callback)


def shutdown(timeout: float = EXIT_TIMEOUT) -> None:
    """Stop this process's loop thread; the next blocking call starts a new one."""
    global _current
    with _lock:
        loop, _current = _current, None
    if loop is not None:
        loop.stop(timeout)


def _at_exit() -> None:
    loop = _current
    if loop is None or loop.pid != os.getpid():
        return
    for callback in _before_exit:
        # One callback failing must not keep the loop running.
        with contextlib.suppress(Exception):
            callback()
    shutdown()


def _before_fork() -> None:
    _lock.acquire()


def _after_fork_in_parent() -> None:
    _lock.release()


def _after_fork_in_child() -> None:
    global _current, _lock, _pid
    _lock = threading.Lock()
    _pid = os.getpid()
    if _current is not None:
        _inherited.append(_current)
        _current = None


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)
