"""What legacy code running in the reverse adapter's worker threads sees of the async world.

The original SDK called every module method with a ``context`` first: a dict whose
``context["func"].getModule(name)`` returned another configured module, so that a wrapper
(encryption, deduplication) could stack on an inner store. `LegacyContext` rebuilds that
dict; `ModuleView` gives an async module the classic blocking methods, run on the adapter's
own event loop through anyio's ``from_thread``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, cast

import anyio.from_thread

from asyncstore.module import StorageModule
from asyncstore.streams import ReadStream
from asyncstore.sync._stream import DEFAULT_BUFFER_SIZE, SyncReadStream, loop_source, open_stream

__all__ = ["LegacyContext", "LegacyFunctions", "ModuleView", "ThreadRunner"]

T = TypeVar("T")


class ThreadRunner:
    """Runs coroutines on an event loop from one of that loop's anyio worker threads."""

    def call(self, func: Callable[..., Awaitable[T]], /, *args: Any) -> T:
        """Run ``func(*args)`` on the loop that started the calling worker thread."""
        coroutine_function = cast("Callable[..., Coroutine[Any, Any, T]]", func)
        return anyio.from_thread.run(coroutine_function, *args)

    def call_soon(self, func: Callable[..., Awaitable[object]], /, *args: Any) -> None:
        """Do nothing: a finaliser cannot know which loop to reach (the object is dropped)."""


async def _open(module: StorageModule, handle: str) -> tuple[ReadStream, bytes | None]:
    return await open_stream(module.get_read_stream(handle), DEFAULT_BUFFER_SIZE)


class ModuleView:
    """An async module with the classic synchronous methods, for legacy code to call.

    Each method takes the legacy ``context`` first (and ignores it) and blocks its worker
    thread while the coroutine runs on the loop that started the thread.
    """

    def __init__(self, module: StorageModule, runner: ThreadRunner) -> None:
        self.module = module
        self._runner = runner

    def put(self, context: object, stream: Any) -> str:
        """Store the bytes of ``stream`` (anything `put` accepts) and return the handle."""
        return self._runner.call(self.module.put, loop_source(stream, self._runner))

    def new_data(self, context: object) -> str:
        """Allocate a fresh handle."""
        return self._runner.call(self.module.new_data)

    def assign(self, context: object, module_data: str, stream: Any) -> None:
        """Store the bytes of ``stream`` under ``module_data``."""
        self._runner.call(self.module.assign, module_data, loop_source(stream, self._runner))

    def available(self, context: object, module_data: str) -> bool:
        """Return whether complete data exists for ``module_data``."""
        return self._runner.call(self.module.available, module_data)

    def get_read_stream(self, context: object, module_data: str) -> SyncReadStream:
        """Open a blocking binary file (read, seek, close) over the object."""
        stream, whole = self._runner.call(_open, self.module, module_data)
        return SyncReadStream(stream, self._runner, whole=whole)

    def get_size(self, context: object, module_data: str) -> int:
        """Return the object's size in bytes."""
        return self._runner.call(self.module.get_size, module_data)

    def delete(self, context: object, module_data: str) -> None:
        """Delete the object."""
        self._runner.call(self.module.delete, module_data)

    def statistics(self, context: object) -> dict[str, Any]:
        """Return the module's statistics."""
        return self._runner.call(self.module.statistics)

    def capabilities(self, context: object) -> dict[str, Any]:
        """Return the module's capabilities."""
        return self.module.capabilities()

    def __repr__(self) -> str:
        return f"<ModuleView of {self.module!r}>"


class LegacyFunctions:
    """The ``context["func"]`` object: the host services of the original SDK."""

    def __init__(self, get_module: Callable[[str], object]) -> None:
        self._get_module = get_module

    def getModule(self, name: str) -> object:  # the original SDK's spelling
        """Return another configured module (by store name or URL), usable synchronously.

        Raises:
            ConfigError: If no such store is configured, or the host offers none.
        """
        return self._get_module(name)

    get_module = getModule


class LegacyContext(dict[str, Any]):
    """The ``context`` argument of every legacy method.

    Keys: ``"func"`` (a `LegacyFunctions`: ``context["func"].getModule(name)``), ``"store"``
    (the store's name) and ``"log"`` (a `logging.Logger`).
    """

    def __init__(self, *, store: str, get_module: Callable[[str], object], log: logging.Logger):
        super().__init__(func=LegacyFunctions(get_module), store=store, log=log)
