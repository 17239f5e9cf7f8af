"""A task that outlives the call that starts it: the producer behind a transformed read.

A transformed read returns a stream, and the transform must keep running between the
reader's calls, in no task group the reader holds. So it runs as a task of its own on the
current event loop (an asyncio task, or a trio system task), inside a cancel scope its
owner cancels; the owner then waits for it to finish, so it never outlives the stream. Its
outcome is kept, never raised into the event loop.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

__all__ = ["Background", "start_background"]

_RUNNING: set[Any] = set()  # asyncio keeps only weak references to tasks


class Background:
    """A running background task: `cancel` it, then `wait` for it to end."""

    def __init__(self, function: Callable[[], Awaitable[None]]) -> None:
        self._function = function
        self._scope = anyio.CancelScope()
        self._done = anyio.Event()
        self.error: BaseException | None = None
        """What the task raised, other than its own cancellation."""

    async def _main(self) -> None:
        try:
            with self._scope:
                await self._function()
        except BaseException as exc:  # kept for the owner; a detached task has no one above
            self.error = exc
        finally:
            self._done.set()

    @property
    def done(self) -> bool:
        """Whether the task has ended."""
        return self._done.is_set()

    def cancel(self) -> None:
        """Cancel the task (harmless once it has ended); any task may call it."""
        self._scope.cancel()

    async def wait(self) -> None:
        """Wait until the task has ended."""
        await self._done.wait()


def _on_asyncio() -> bool:
    if "asyncio" not in sys.modules:
        return False
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def start_background(function: Callable[[], Awaitable[None]]) -> Background:
    """Start ``function()`` as a task of its own on the running event loop.

    Raises:
        RuntimeError: If no asyncio or trio event loop is running.
    """
    task = Background(function)
    if _on_asyncio():
        import asyncio

        handle = asyncio.get_running_loop().create_task(task._main())
        _RUNNING.add(handle)
        handle.add_done_callback(_RUNNING.discard)
        return task
    trio = sys.modules.get("trio")
    if trio is not None and trio.lowlevel.in_trio_run():
        trio.lowlevel.spawn_system_task(task._main, name="asyncstore transformed read")
        return task
    raise RuntimeError("a transformed read needs a running asyncio or trio event loop")
