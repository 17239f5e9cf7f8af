"""`CallQueue`: blocking calls handed from threads to one event loop, and their outcomes back.

Built for many threads calling at once. Under the GIL, every system call that releases it (a
write to the loop's wake-up pipe, a sleep on a lock, the loop's own poll) lets a waiting
thread take it, and such a switch costs more than the rest of a small call. So:

- a caller queues its call and writes to the wake-up pipe only when no drain of the queue is
  already pending; the loop starts every queued call in one callback, each in a task of its
  own and in a copy of its caller's context variables (eagerly on Python 3.12+);
- a caller sleeps on a plain lock (reused from call to call), which the loop releases once
  the outcome is set; a `concurrent.futures.Future` adds a condition variable, a fresh lock
  per wait and done callbacks in both threads;
- the callers of calls that finish in their first step are released together once every
  call of the drain has taken it, so that woken callers do not take the GIL from the loop in
  the middle of a batch.

anyio's ``BlockingPortal.call`` costs a second round trip per call (it waits for the task to
be spawned), so the portal here only owns the loop's lifetime.
"""

from __future__ import annotations

import _thread
import asyncio
import concurrent.futures
import contextlib
import contextvars
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

__all__ = ["CallQueue"]

T = TypeVar("T")

_EAGER = sys.version_info >= (3, 12)

# Idle waiter locks, each held, for `CallQueue.call` to reuse (allocating one costs more).
_waiters: list[_thread.LockType] = []


class _Call(Generic[T]):
    """One blocking call: what to run on the loop, and where its outcome goes."""

    __slots__ = ("abandoned", "args", "context", "error", "func", "result", "task", "waiter")

    def __init__(
        self, func: Callable[..., Awaitable[T]], args: tuple[Any, ...], waiter: _thread.LockType
    ) -> None:
        self.func = func
        self.args = args
        # The caller's context variables, seen by the call as they would be by a direct await.
        self.context = contextvars.copy_context()
        # Held by the caller's thread; released on the loop once the outcome is set.
        self.waiter = waiter
        self.result: T | None = None
        self.error: BaseException | None = None
        self.task: asyncio.Task[None] | None = None
        # Set by a caller that stopped waiting (interrupted, timed out): do not start it.
        self.abandoned = False


if sys.version_info >= (3, 12):

    def _start_task(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]
    ) -> asyncio.Task[None]:
        # Run to the first suspension now: a call that never suspends (a memory module's)
        # is done before the drain returns, without a trip through the loop's ready queue.
        return asyncio.Task(coro, loop=loop, eager_start=True)

else:

    def _start_task(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]
    ) -> asyncio.Task[None]:
        return loop.create_task(coro)


def _new_waiter() -> _thread.LockType:
    waiter = _thread.allocate_lock()
    waiter.acquire()
    return waiter


class CallQueue:
    """Runs coroutines on ``loop`` for threads that block until each is done.

    Args:
        loop: A running event loop of another thread.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: deque[_Call[Any]] = deque()
        # True from the moment a drain is scheduled until it starts: callers that queue in
        # between need not wake the loop again.
        self._drain_pending = False
        # True while the calls of a drain take their first step: the waiters of those that
        # finish meanwhile are released together afterwards.
        self._flush_pending = False
        self._finished: list[_thread.LockType] = []

    def call(
        self, func: Callable[..., Awaitable[T]], args: tuple[Any, ...], timeout: float | None
    ) -> T:
        """Run ``func(*args)`` on the loop and return its result, blocking until done.

        An exception raised by the call propagates unchanged, its traceback included (a
        cancellation on the loop as `concurrent.futures.CancelledError`). If the waiting
        thread is interrupted (``KeyboardInterrupt``) or ``timeout`` passes, the call on the
        loop is cancelled.

        Raises:
            TimeoutError: If ``timeout`` (seconds) passes first.
            RuntimeError: If the loop is closed.
        """
        try:
            waiter = _waiters.pop()
        except IndexError:
            waiter = _new_waiter()
        pending = _Call(func, args, waiter)
        try:
            self._submit(pending)
            if not waiter.acquire(True, -1 if timeout is None else timeout):
                raise TimeoutError(f"the call did not finish within {timeout} seconds")
        except BaseException:
            # Interrupted or timed out, possibly inside `_submit`. The waiter may be
            # released later, when the cancelled call ends: never reuse it.
            self._abandon(pending)
            raise
        _waiters.append(waiter)
        error = pending.error
        if error is None:
            return pending.result  # type: ignore[return-value]
        pending.error = None  # no cycle through the traceback's frames
        try:
            if isinstance(error, asyncio.CancelledError):
                raise concurrent.futures.CancelledError() from error
            raise error
        finally:
            del error

    # ---- the caller's side ---------------------------------------------------------------

    def _submit(self, call: _Call[Any]) -> None:
        self._queue.append(call)
        # A pending drain will see the call: it clears the flag before it empties the queue,
        # and the call was queued before the flag was read.
        if not self._drain_pending:
            self._drain_pending = True
            try:
                self._loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop is closed
                self._drain_pending = False
                raise

    def _abandon(self, call: _Call[Any]) -> None:
        call.abandoned = True
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing runs any more
            self._loop.call_soon_threadsafe(self._forget, call)

    # ---- the loop's side -----------------------------------------------------------------

    def _drain(self) -> None:
        """Start every queued call, each in its own task."""
        self._drain_pending = False
        self._flush_pending = True
        queue = self._queue
        loop = self._loop
        try:
            while queue:
                call = queue.popleft()
                if not call.abandoned:
                    call.task = call.context.run(_start_task, loop, self._run_call(call))
        finally:
            if _EAGER:
                self._flush()
            else:  # after the first steps, which the new tasks have just scheduled
                loop.call_soon(self._flush)

    async def _run_call(self, call: _Call[Any]) -> None:
        """Run a call in its task, then see that its caller is woken with the outcome."""
        try:
            call.result = await call.func(*call.args)
        except BaseException as exc:  # handed to the caller, who raises it in its own thread
            call.error = exc
        # A cancellation may be the loop shutting down, when a flush might never come.
        if self._flush_pending and not isinstance(call.error, asyncio.CancelledError):
            self._finished.append(call.waiter)
        else:
            call.waiter.release()

    def _flush(self) -> None:
        """Release the callers of the calls that finished since the last drain."""
        self._flush_pending = False
        finished, self._finished = self._finished, []
        for waiter in finished:
            waiter.release()

    def _forget(self, call: _Call[Any]) -> None:
        """Cancel a call whose caller stopped waiting."""
        # Drain first: an interrupt inside `_submit` may have left the drain flag set with no
        # drain scheduled, which would keep every later call waiting. The drain skips the
        # abandoned call if it has not started.
        self._drain()
        if call.task is not None:
            call.task.cancel()
