"""The machinery every part of the conformance suite shares: knobs, fixtures and helpers."""

from __future__ import annotations

import hashlib
import types
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar, TypeVar

import anyio
import anyio.lowlevel
import pytest

from asyncstore.info import ObjectInfo
from asyncstore.module import StorageModule

T = TypeVar("T")

MiB = 1 << 20

PRESUMED = frozenset({"new_data", "assign", "delete", "writable"})
"""Capabilities a module has unless it declares them False (the contract's own operations)."""


def _copy_function(function: types.FunctionType, owner: type) -> types.FunctionType:
    copy = types.FunctionType(
        function.__code__,
        function.__globals__,
        function.__name__,
        function.__defaults__,
        function.__closure__,
    )
    # Marks live in __dict__ as lists that plugins mutate (anyio adds usefixtures to the
    # function it collects): each subclass gets its own lists.
    copy.__dict__.update(
        {k: list(v) if isinstance(v, list) else v for k, v in function.__dict__.items()}
    )
    copy.__kwdefaults__ = function.__kwdefaults__
    copy.__doc__ = function.__doc__
    copy.__module__ = function.__module__
    copy.__qualname__ = f"{owner.__qualname__}.{function.__name__}"
    return copy


class SuiteBase:
    """Knobs, fixtures and helpers of the conformance suite.

    Knobs (class attributes a subclass may override):
        key_prefix: Every key the suite writes starts with this (for running against a live
            store, in a scratch prefix).
        large_object_size: The size of the multi-chunk objects, in bytes.
        list_page_objects: How many objects the pagination check lists (more than 1,000).
        concurrency: How many tasks the concurrency checks run at once.
        read_after_write_timeout: For eventually consistent backends, how long (seconds)
            read-after-write and list-after-write checks retry before failing.
    """

    __asyncstore_conformance__: ClassVar[bool] = True

    key_prefix: ClassVar[str] = ""
    large_object_size: ClassVar[int] = 5 * MiB + 12345
    list_page_objects: ClassVar[int] = 1100
    concurrency: ClassVar[int] = 16
    read_after_write_timeout: ClassVar[float] = 0.0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for klass in cls.__mro__[1:]:
            for name, value in vars(klass).items():
                if (
                    name.startswith("test_")
                    and isinstance(value, types.FunctionType)
                    and name not in vars(cls)
                    and getattr(cls, name) is value
                ):
                    setattr(cls, name, _copy_function(value, cls))

    @pytest.fixture
    def anyio_backend(self) -> str:
        """The anyio backend the suite runs on; override with params to add ``"trio"``."""
        return "asyncio"

    # ---- hooks a subclass may override ----------------------------------------------------

    async def unknown_handle(self, module: StorageModule) -> str:
        """Return a valid handle that names no object (override for non-keyed modules).

        The default makes up a key for keyed modules, asks `new_data` of the others, and for
        modules without `new_data` stores an object and deletes it; the check is skipped when
        the module can do none of these.
        """
        if module.capabilities().get("named_keys"):
            return self.k(f"unknown-{uuid.uuid4().hex}")
        if self.supports(module, "new_data"):
            return await module.new_data()
        self.require(module, "delete")
        handle = await module.put(b"deleted")
        await module.delete(handle)
        return handle

    async def seed(
        self, module: StorageModule, data: Any, *, key: str | None = None, **kwargs: Any
    ) -> str:
        """Store an object for the checks to read, in a module that accepts no writes.

        `put` calls this instead of writing through a module whose ``capabilities()`` say
        ``writable`` is False (a read-only view): the suite of such a module overrides it to
        store through the writable store beneath, so that the reading checks run over the
        objects it fills in, while the writing checks skip.

        Args:
            module: The module under test.
            data: The bytes (any byte source), as for `StorageModule.put`.
            key: The key, already under `key_prefix`; None when the check lets the store
                choose.
            **kwargs: ``metadata`` and ``content_type``, as for `StorageModule.put`.

        Returns:
            The handle under which ``module`` shows the object.
        """
        pytest.fail(
            f"{type(module).__name__} declares 'writable' False: override seed() in its suite "
            "to store the objects the checks read through a writable store beneath it"
        )

    # ---- helpers --------------------------------------------------------------------------

    def k(self, key: str) -> str:
        """Return ``key`` under the suite's key prefix."""
        return self.key_prefix + key

    @staticmethod
    def supports(module: StorageModule, capability: str) -> bool:
        """Return whether the module declares ``capability``.

        The operations of the core contract (`PRESUMED`) count as supported unless declared
        False; every other capability only when declared true.
        """
        return bool(module.capabilities().get(capability, capability in PRESUMED))

    @classmethod
    def require(cls, module: StorageModule, capability: str) -> None:
        """Skip the check when the module declares ``capability`` absent."""
        if not cls.supports(module, capability):
            pytest.skip(f"{type(module).__name__} declares {capability!r} unsupported")

    async def put(
        self, module: StorageModule, data: Any, key: str | None = None, **kwargs: Any
    ) -> str:
        """Store ``data`` under ``key`` (prefixed) when the module is keyed, else anywhere.

        A module that accepts no writes is filled through `seed` instead.
        """
        if key is not None and module.capabilities().get("named_keys"):
            key = self.k(key)
        else:
            key = None
        if not self.supports(module, "writable"):
            return await self.seed(module, data, key=key, **kwargs)
        if key is not None:
            return await module.put(data, key=key, **kwargs)
        return await module.put(data, **kwargs)

    @staticmethod
    async def read_all(module: StorageModule, handle: str, **kwargs: Any) -> bytes:
        """Read a whole object (or a range) through `get_read_stream`."""
        async with await module.get_read_stream(handle, **kwargs) as stream:
            return await stream.read()

    async def listing(self, module: StorageModule, prefix: str = "") -> list[ObjectInfo]:
        """List everything under the suite's prefix plus ``prefix``."""
        return [info async for info in module.list(self.k(prefix))]

    async def eventually(self, check: Callable[[], Awaitable[T]]) -> T:
        """Run ``check`` until it passes or `read_after_write_timeout` runs out."""
        deadline = anyio.current_time() + self.read_after_write_timeout
        while True:
            try:
                return await check()
            except AssertionError:
                if anyio.current_time() >= deadline:
                    raise
            await anyio.sleep(0.1)

    @staticmethod
    def pattern(size: int, seed: int = 0) -> bytes:
        """Return ``size`` bytes that differ at every offset (so misplaced bytes show)."""
        block = hashlib.sha256(seed.to_bytes(8, "big")).digest() * 2048
        repeats = size // len(block) + 1
        return (block * repeats)[:size]

    @staticmethod
    async def chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
        """Yield ``data`` as an async iterable in ``size``-byte chunks."""
        for index in range(0, len(data), size):
            await anyio.lowlevel.checkpoint()
            yield data[index : index + size]


class SourceFailed(Exception):
    """Raised by the suite's deliberately failing byte sources."""


async def failing_source(
    data: bytes, fail_after: int, chunk: int = 64 * 1024
) -> AsyncIterator[bytes]:
    """Yield ``data`` in chunks, then raise `SourceFailed` after ``fail_after`` bytes."""
    sent = 0
    while sent < fail_after:
        piece = data[sent : min(sent + chunk, fail_after)]
        sent += len(piece)
        await anyio.lowlevel.checkpoint()
        yield piece
    raise SourceFailed("the source failed midway")
