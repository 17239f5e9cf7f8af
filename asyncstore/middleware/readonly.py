"""The readonly middleware: a view of a store that serves reads and refuses every write.

```toml
[stores.published]
module = "readonly"
inner = "local"
```

Reads (`get_read_stream`, `stat`, `get_size`, `available`, `list`) are the inner store's own
bound methods, so they cost nothing extra: not even a call; their results and errors are the
inner store's. Every write (`put`, `new_data`, `assign`, `copy`, `delete`, `cleanup`, and
presigned URLs for anything but reading) raises `PermissionDeniedError` before the inner store
is touched and before the source is read; a malformed argument (a key, metadata, content type
or condition that breaks the rules) raises its own error first, as from any store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar, NoReturn

# Imported at run time: the registry reads the constructor's annotations to convert options.
from asyncstore.context import ModuleContext
from asyncstore.errors import PermissionDeniedError
from asyncstore.info import ObjectInfo
from asyncstore.keys import validate_content_type, validate_metadata
from asyncstore.middleware._base import WrapperModule, resolve_inner
from asyncstore.module import StorageModule, check_conditions
from asyncstore.streams import ByteSource, ReadStream

__all__ = ["ReadOnlyModule"]

_READS = ("get_read_stream", "stat", "get_size", "available", "list")
"""The methods a read-only view takes from its store as they are."""

_READ_METHODS = frozenset({"GET", "HEAD"})
"""The presigned-URL methods that only read."""


class ReadOnlyModule(WrapperModule):
    """A read-only view of a store: reads pass straight through, every write is refused.

    Args:
        inner: The store to show: a store name or URL (or a module).
    """

    LAYER: ClassVar[str] = "readonly"

    def __init__(self, *, inner: str | StorageModule, context: ModuleContext | None = None) -> None:
        super().__init__(resolve_inner(inner, context))
        self._refused = 0
        # The store's own bound methods, set on the instance: a read through the view is the
        # very same call as a read of the store.
        for name in _READS:
            setattr(self, name, getattr(self._inner, name))

    # ---- reads (replaced per instance by the store's own methods) --------------------------

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None, if_match: str | None = None
    ) -> ReadStream:
        """Open a stream of the inner store's object."""
        return await self._inner.get_read_stream(handle, start=start, end=end, if_match=if_match)

    async def stat(self, handle: str) -> ObjectInfo:
        """Describe the inner store's object."""
        return await self._inner.stat(handle)

    async def get_size(self, handle: str) -> int:
        """Return the size of the inner store's object."""
        return await self._inner.get_size(handle)

    async def available(self, handle: str) -> bool:
        """Return whether the inner store holds a complete object for ``handle``."""
        return await self._inner.available(handle)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Yield the inner store's objects under ``prefix``."""
        async for info in self._inner.list(prefix):
            yield info

    async def presign(self, handle: str, *, method: str = "GET", expires: int = 3600) -> str:
        """Presign a ``GET`` or ``HEAD`` on the inner store; any other method is a write.

        Raises:
            PermissionDeniedError: For a method that writes (``PUT``, ``DELETE``).
        """
        if not isinstance(method, str) or method.upper() not in _READ_METHODS:
            self._refuse(f"presigned {method!r} URLs", handle)
        return await self._inner.presign(handle, method=method, expires=expires)

    # ---- writes: refused ---------------------------------------------------------------

    async def put(
        self,
        source: ByteSource,
        *,
        key: str | None = None,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str:
        """Refuse to store anything.

        Raises:
            PermissionDeniedError: Always, once the arguments have been checked.
        """
        if key is not None:
            self._check_handle(key)
        self._check_arguments(metadata, content_type, overwrite, if_match)
        self._refuse("put", key)

    async def new_data(self) -> str:
        """Refuse to allocate a handle (it would be for a write).

        Raises:
            PermissionDeniedError: Always.
        """
        self._refuse("new_data", None)

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
        """Refuse to store anything.

        Raises:
            PermissionDeniedError: Always, once the arguments have been checked.
        """
        self._check_handle(handle)
        self._check_arguments(metadata, content_type, overwrite, if_match)
        self._refuse("assign", handle)

    async def copy(
        self,
        handle: str,
        *,
        key: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str:
        """Refuse to copy into this store.

        Raises:
            PermissionDeniedError: Always, once the arguments have been checked.
        """
        self._check_handle(handle)
        if key is not None:
            self._check_handle(key)
        check_conditions(overwrite, if_match, store=self.name)
        self._refuse("copy", key if key is not None else handle)

    async def delete(self, handle: str, *, if_match: str | None = None) -> None:
        """Refuse to delete anything, present or not.

        Raises:
            PermissionDeniedError: Always, once the arguments have been checked.
        """
        self._check_handle(handle)
        check_conditions(if_match=if_match, store=self.name)
        self._refuse("delete", handle)

    async def cleanup(self, *, older_than: float = 3600.0) -> dict[str, int]:
        """Refuse to clean up the inner store (it removes what interrupted writes left).

        Raises:
            PermissionDeniedError: Always.
        """
        self._refuse("cleanup", None)

    def _check_arguments(
        self,
        metadata: Mapping[str, str] | None,
        content_type: str | None,
        overwrite: bool,
        if_match: str | None,
    ) -> None:
        """Raise the error a malformed write argument gets from any store."""
        validate_metadata(metadata, store=self.name)
        validate_content_type(content_type, store=self.name)
        check_conditions(overwrite, if_match, store=self.name)

    def _refuse(self, operation: str, handle: str | None) -> NoReturn:
        self._refused += 1
        raise PermissionDeniedError(
            f"this store is read-only: {operation} is refused", store=self.name, handle=handle
        )

    # ---- description ---------------------------------------------------------------------

    def capabilities(self) -> dict[str, Any]:
        """Return the inner store's capabilities for reading, and no writes.

        ``writable``, ``new_data``, ``assign``, ``delete`` and the conditions on writes are
        False; ``conditional_read``, ranges, listing and presigning (of reads) are the inner
        store's.
        """
        effective = dict(self._inner.capabilities())
        effective.update(
            {
                "writable": False,
                "new_data": False,
                "assign": False,
                "delete": False,
                "server_side_copy": False,
                "reconfigure": False,
                "conditional_create": False,
                "conditional_replace": False,
                "conditional_delete": False,
            }
        )
        return effective

    def _layer_statistics(self) -> dict[str, Any]:
        return {"refused_writes": self._refused}
