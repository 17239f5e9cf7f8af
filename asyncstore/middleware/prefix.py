"""The prefix middleware: a sub-store, the objects of a store under one key prefix.

```toml
[stores.acme]
module = "prefix"
inner = "local"
prefix = "tenants/acme/"
```

Handles are relative to the prefix: ``put(key="a.txt")`` stores ``tenants/acme/a.txt`` beneath
and returns ``a.txt``. Listing, `stat`, `copy` and `statistics` stay inside the prefix, and no
handle reaches a key outside it. A handle must obey the key rules, and since the prefix is
whole segments, the key beneath (the prefix, then the handle) obeys them exactly when the
handle does: the store beneath checks them, once, on the whole key, and its `InvalidKeyError`
is raised as this store's. What could climb out of the prefix (a ``.`` or ``..`` segment, a
leading ``/``) is refused here before that store is asked, so no key beneath lies outside the
prefix whatever it does. Keys beneath are at most 1024 bytes, so handles are shorter by the
prefix: ``capabilities()["max_key_bytes"]``.

Conditions (``overwrite=False``, ``if_match``) pass through to the store beneath, which decides
them atomically; etags are its own.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar, NoReturn

# Imported at run time: the registry reads the constructor's annotations to convert options.
from asyncstore.context import ModuleContext
from asyncstore.errors import ConfigError, InvalidKeyError, StorageError
from asyncstore.info import Handle, ObjectInfo
from asyncstore.keys import MAX_KEY_BYTES, validate_key, validate_prefix
from asyncstore.middleware._base import WrapperModule, resolve_inner
from asyncstore.middleware._views import (
    check_segments,
    closing,
    renamed,
    renamed_stream,
    reraise_renamed,
)
from asyncstore.module import StorageModule
from asyncstore.streams import ByteSource, ReadStream

__all__ = ["PrefixModule"]


class PrefixModule(WrapperModule):
    """A sub-store: a store's objects under one key prefix, with handles relative to it.

    Args:
        inner: The store beneath: a store name or URL (or a module). It must take keys.
        prefix: The key prefix, in whole segments: ``"tenants/acme/"`` (the final ``/`` may
            be left out).
    """

    LAYER: ClassVar[str] = "prefix"

    def __init__(
        self,
        *,
        inner: str | StorageModule,
        prefix: str,
        context: ModuleContext | None = None,
    ) -> None:
        self._prefix = check_segments(prefix, "prefix")
        super().__init__(resolve_inner(inner, context))
        capabilities = self._inner.capabilities()
        if not capabilities.get("named_keys"):
            raise ConfigError(
                f"the prefix module needs a store that takes keys; {self._inner.name!r} "
                "chooses its own handles"
            )
        beneath = capabilities.get("max_key_bytes", MAX_KEY_BYTES)
        self._limit = min(MAX_KEY_BYTES, beneath) - len(self._prefix.encode())
        if self._limit < 1:
            raise ConfigError(
                f"prefix {self._prefix!r} leaves no room for keys "
                f"(the store beneath takes keys of at most {beneath} bytes)"
            )
        self._cut = len(self._prefix)

    @property
    def prefix(self) -> str:
        """The key prefix beneath, ending in ``/``."""
        return self._prefix

    # ---- handles -------------------------------------------------------------------------

    def _key(self, handle: str) -> str:
        """Return the key beneath for ``handle``.

        A handle that might climb out (not a str, a leading ``/``, a segment that starts
        with ``.``) or be too long (UTF-8 takes up to 4 bytes a character) is checked in full
        here; the store beneath checks the rest on the whole key, as it checks every key.

        Raises:
            InvalidKeyError: If it might climb out or be too long, and breaks a rule or is
                longer than the room the prefix leaves (nothing beneath is asked).
        """
        if (
            not isinstance(handle, str)
            or handle.startswith((".", "/"))
            or "/." in handle
            or len(handle) * 4 > self._limit
        ):
            validate_key(handle, store=self.name)
            self._room_for(handle, "key")
        return self._prefix + handle

    def _room_for(self, text: str, what: str) -> None:
        """Raise `InvalidKeyError` if ``text`` is longer than the room the prefix leaves."""
        if len(text.encode()) > self._limit:
            raise InvalidKeyError(
                f"{what} is {len(text.encode())} bytes long; the limit in this store is "
                f"{self._limit}",
                store=self.name,
                handle=text,
            )

    def _outer(self, key: str) -> str | None:
        """Return the handle of a key beneath, or None if it lies outside the prefix."""
        return key[self._cut :] if key.startswith(self._prefix) else None

    def _reraise(self, error: StorageError) -> NoReturn:
        reraise_renamed(error, store=self.name, rename=self._outer)

    # ---- reading -------------------------------------------------------------------------

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None, if_match: str | None = None
    ) -> ReadStream:
        """Open a stream of the object (the store's own stream, renamed)."""
        key = self._key(handle)
        try:
            stream = await self._inner.get_read_stream(key, start=start, end=end, if_match=if_match)
        except StorageError as exc:
            self._reraise(exc)
        return renamed_stream(stream, handle)

    async def stat(self, handle: str) -> ObjectInfo:
        """Describe the object."""
        key = self._key(handle)
        try:
            return renamed(await self._inner.stat(key), handle)
        except StorageError as exc:
            self._reraise(exc)

    async def get_size(self, handle: str) -> int:
        """Return the object's size."""
        key = self._key(handle)
        try:
            return await self._inner.get_size(key)
        except StorageError as exc:
            self._reraise(exc)

    async def available(self, handle: str) -> bool:
        """Return whether a complete object exists for ``handle``."""
        key = self._key(handle)
        try:
            return await self._inner.available(key)
        except StorageError as exc:
            self._reraise(exc)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Yield the objects under ``prefix`` (relative to the sub-store), in handle order."""
        validate_prefix(prefix, store=self.name)
        if len(prefix) * 4 > self._limit:
            self._room_for(prefix, "prefix")
        try:
            async with closing(self._inner.list(self._prefix + prefix)) as listing:
                async for info in listing:
                    handle = self._outer(info.handle)
                    if handle is not None:  # never show a key from outside, whatever it says
                        yield renamed(info, handle)
        except StorageError as exc:
            self._reraise(exc)

    async def presign(self, handle: str, *, method: str = "GET", expires: int = 3600) -> str:
        """Presign the object's key beneath."""
        key = self._key(handle)
        try:
            return await self._inner.presign(key, method=method, expires=expires)
        except StorageError as exc:
            self._reraise(exc)

    # ---- writing -------------------------------------------------------------------------

    async def new_data(self) -> str:
        """Return a fresh handle (a random key, inside the prefix)."""
        return uuid.uuid4().hex

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
        """Store the bytes under ``prefix + key`` (a fresh key when None); return ``key``."""
        conditions = self._write_conditions(overwrite, if_match)
        handle = await self.new_data() if key is None else key
        inner_key = self._key(handle)
        try:
            stored = await self._inner.put(
                source,
                key=inner_key,
                metadata=metadata,
                content_type=content_type,
                **conditions,
            )
        except StorageError as exc:
            self._reraise(exc)
        return Handle(handle, getattr(stored, "etag", None))

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
        """Store the bytes under ``prefix + handle``; return the new etag."""
        conditions = self._write_conditions(overwrite, if_match)
        key = self._key(handle)
        try:
            return await self._inner.assign(
                key, source, metadata=metadata, content_type=content_type, **conditions
            )
        except StorageError as exc:
            self._reraise(exc)

    async def copy(
        self,
        handle: str,
        *,
        key: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str:
        """Copy inside the sub-store, as the store beneath copies (server-side where it can)."""
        conditions = self._write_conditions(overwrite, if_match)
        source = self._key(handle)
        target = await self.new_data() if key is None else key
        inner_target = self._key(target)
        try:
            copied = await self._inner.copy(source, key=inner_target, **conditions)
        except StorageError as exc:
            self._reraise(exc)
        return Handle(target, getattr(copied, "etag", None))

    async def delete(self, handle: str, *, if_match: str | None = None) -> None:
        """Delete the object; a missing one is not an error (unless ``if_match`` is given)."""
        self._check_delete_condition(if_match)
        key = self._key(handle)
        try:
            await self._inner.delete(key, if_match=if_match)
        except StorageError as exc:
            self._reraise(exc)

    # ---- description ---------------------------------------------------------------------

    def capabilities(self) -> dict[str, Any]:
        """Return the store's capabilities, with the key length the prefix leaves.

        ``max_key_bytes`` is 1024 (or the store's own limit) less the prefix's length.
        """
        effective = dict(self._inner.capabilities())
        effective.update({"max_key_bytes": self._limit, "reconfigure": False})
        return effective

    async def statistics(self) -> dict[str, Any]:
        """Return the sub-store's figures; none of the rest of the store is shown.

        ``capacity`` has the store's ``total`` and ``free`` (the room the sub-store may grow
        into) and the bytes of the sub-store's objects as ``used``; ``prefix`` counts its
        ``objects`` and ``bytes``, found by listing them (None if the store cannot list).
        """
        capacity = (await self._inner.statistics()).get("capacity", {})
        objects: int | None = None
        used: int | None = None
        if self._inner.capabilities().get("list"):
            objects = used = 0
            async for info in self.list():
                objects += 1
                used += info.size
        return {
            "capacity": {
                "total": capacity.get("total"),
                "used": used,
                "free": capacity.get("free"),
            },
            self.LAYER: {"objects": objects, "bytes": used},
        }

    def __repr__(self) -> str:
        prefix = getattr(self, "_prefix", None)
        inner = getattr(self, "_inner", None)
        return f"<PrefixModule name={self.name!r} prefix={prefix!r} inner={inner!r}>"
