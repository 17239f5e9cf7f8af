"""The mount middleware: one namespace over several stores, routed by key prefix.

```toml
[stores.app]
module = "mount"
mounts = { "media/" = "s3-media", "cache/" = "local", "" = "default" }
```

A key belongs to the store mounted at the longest mount point it starts with, and is stored
there without the mount point: ``media/cat.jpg`` is ``cat.jpg`` in ``s3-media``. The root
mount ``""`` (optional) takes every key no other mount point claims.

Mount points are whole key segments ending in ``/`` (``"media"`` is read as ``"media/"``).
Apart from the root, no mount point may start with another (``"media/"`` and
``"media/thumbs/"`` overlap: a `ConfigError` when the store is opened), so every key has exactly
one home, and keys of the root store that start with another mount point are hidden (they
could never be reached).

`list` merges the mounts' listings in handle order as they stream in, holding one object per
mount; a copy within a mount is the store's own, a copy across mounts streams the bytes from
one store to the other. Conditions pass through to the store that owns the key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar, NoReturn

# Imported at run time: the registry reads the constructor's annotations to convert options.
from asyncstore.context import ModuleContext
from asyncstore.errors import (
    ConfigError,
    InvalidKeyError,
    PreconditionFailedError,
    StorageError,
)
from asyncstore.info import Handle, ObjectInfo
from asyncstore.keys import MAX_KEY_BYTES, validate_key, validate_prefix
from asyncstore.middleware._base import cleanup_all, resolve_inner
from asyncstore.middleware._mounts import (
    check_mount_points,
    close_all,
    merge_listings,
    mount_capabilities,
    total_capacity,
)
from asyncstore.middleware._views import closing, renamed, renamed_stream, reraise_renamed
from asyncstore.module import StorageModule
from asyncstore.streams import ByteSource, ReadStream

__all__ = ["MountModule"]

_SHORT = MAX_KEY_BYTES // 4
"""A key of at most this many characters is within the limit (UTF-8: 4 bytes at most each)."""


class MountModule(StorageModule):
    """One namespace over several stores: each key goes to the store mounted at its prefix.

    Args:
        mounts: A table of mount point to store: ``{"media/": "s3-media", "": "default"}``.
            A mount point is ``""`` (the root: every key no other mount point claims) or
            whole key segments ending in ``/``; no mount point but the root may start with
            another. A store is a store name or URL (or a module); it must take keys. New
            handles (`new_data`, `put` without a key) are made in the root, or in the first
            mount when there is no root.
    """

    LAYER: ClassVar[str] = "mount"

    def __init__(
        self,
        *,
        mounts: Mapping[str, str | StorageModule],
        context: ModuleContext | None = None,
    ) -> None:
        points = check_mount_points(mounts)
        stores = {point: resolve_inner(mounts[given], context) for point, given in points}
        for point, store in stores.items():
            if not store.capabilities().get("named_keys"):
                raise ConfigError(
                    f"mount {point!r}: store {store.name!r} chooses its own handles; "
                    "the mount module needs stores that take keys"
                )
        self._mounts = stores
        """Every mount, in the order configured."""
        self._root = stores.get("")
        self._default = ("", self._root) if self._root is not None else next(iter(stores.items()))
        """Where new handles are made: the root, or the first mount."""
        # The mount points but the root: none starts with another, so a key that starts with
        # any of them (one C call for all) starts with exactly one: its home.
        self._nested = [(point, store) for point, store in stores.items() if point]
        self._points = tuple(point for point, _ in self._nested)
        self._in_order = sorted(self._nested, key=lambda mount: mount[0])

    @property
    def mounts(self) -> dict[str, StorageModule]:
        """The stores by mount point, in the order configured."""
        return dict(self._mounts)

    # ---- routing -------------------------------------------------------------------------

    def _mount_of(self, key: str) -> tuple[str, StorageModule] | None:
        """Return the mount point and store that own ``key`` (None if none does)."""
        if key.startswith(self._points):
            for mount in self._nested:
                if key.startswith(mount[0]):
                    return mount
        return None if self._root is None else ("", self._root)

    def _route(self, handle: str) -> tuple[str, StorageModule, str] | None:
        """Return the mount point, store and key there of ``handle`` (None if no mount owns it).

        The key rules are checked by the store that owns the key (a key there is the handle
        less whole segments, so it breaks a rule exactly when the handle does), except the
        length, which only the handle's own can tell.

        Raises:
            InvalidKeyError: If ``handle`` is not a str, or too long, or no mount owns it
                and it breaks the key rules.
        """
        if not isinstance(handle, str) or (
            len(handle) > _SHORT and len(handle.encode()) > MAX_KEY_BYTES
        ):
            validate_key(handle, store=self.name)
        if handle.startswith(self._points):
            for point, store in self._nested:
                if handle.startswith(point):
                    return point, store, handle[len(point) :]
        if self._root is None:
            validate_key(handle, store=self.name)
            return None
        return "", self._root, handle

    def _owner(self, handle: str) -> tuple[str, StorageModule, str]:
        """Return where the object ``handle`` names would be; `NotFoundError` if nowhere."""
        route = self._route(handle)
        if route is None:
            raise self._not_found(handle)
        return route

    def _route_write(self, handle: str) -> tuple[str, StorageModule, str]:
        """Return where ``handle`` is stored.

        Raises:
            InvalidKeyError: If no mount owns it (there is no root mount).
        """
        route = self._route(handle)
        if route is None:
            raise InvalidKeyError(
                f"no mount holds this key (mount points: {', '.join(map(repr, self._mounts))})",
                store=self.name,
                handle=handle,
            )
        return route

    def _reraise(self, error: StorageError, point: str) -> NoReturn:
        reraise_renamed(error, store=self.name, rename=lambda key: point + key)

    # ---- reading -------------------------------------------------------------------------

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None, if_match: str | None = None
    ) -> ReadStream:
        """Open a stream of the object in the store that owns it."""
        if if_match is not None:
            self._check_read_condition(if_match)
        route = self._route(handle)  # not `_owner`: one call fewer on every read
        if route is None:
            raise self._not_found(handle)
        point, store, key = route
        try:
            stream = await store.get_read_stream(key, start=start, end=end, if_match=if_match)
        except StorageError as exc:
            self._reraise(exc, point)
        return renamed_stream(stream, handle) if point else stream

    async def stat(self, handle: str) -> ObjectInfo:
        """Describe the object."""
        point, store, key = self._owner(handle)
        try:
            info = await store.stat(key)
        except StorageError as exc:
            self._reraise(exc, point)
        return renamed(info, handle) if point else info

    async def get_size(self, handle: str) -> int:
        """Return the object's size."""
        point, store, key = self._owner(handle)
        try:
            return await store.get_size(key)
        except StorageError as exc:
            self._reraise(exc, point)

    async def available(self, handle: str) -> bool:
        """Return whether the store that owns ``handle`` has a complete object for it."""
        route = self._route(handle)
        if route is None:
            return False
        point, store, key = route
        try:
            return await store.available(key)
        except StorageError as exc:
            self._reraise(exc, point)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Yield the objects under ``prefix`` of every mount, merged in handle order.

        A prefix inside one mount point lists that mount alone; otherwise the root's listing
        (less the keys other mounts hide) is merged with those of the mounts under the prefix.
        """
        validate_prefix(prefix, store=self.name)
        owner = self._mount_of(prefix)
        if owner is not None and owner[0]:  # the prefix lies inside one mount point
            point, store = owner
            listings = [self._listing(point, store, prefix[len(point) :])]
        else:
            listings = [
                self._listing(point, store, "")
                for point, store in self._in_order
                if point.startswith(prefix)
            ]
            if self._root is not None:
                listings.insert(0, self._root_listing(self._root, prefix))
        async with closing(merge_listings(listings)) as merged:
            async for info in merged:
                yield info

    async def _listing(
        self, point: str, store: StorageModule, prefix: str
    ) -> AsyncIterator[ObjectInfo]:
        try:
            async with closing(store.list(prefix)) as listing:
                async for info in listing:
                    yield renamed(info, point + info.handle)
        except StorageError as exc:
            self._reraise(exc, point)

    async def _root_listing(self, root: StorageModule, prefix: str) -> AsyncIterator[ObjectInfo]:
        try:
            async with closing(root.list(prefix)) as listing:
                async for info in listing:
                    found = self._mount_of(info.handle)
                    if found is not None and not found[0]:  # not hidden by another mount point
                        yield info
        except StorageError as exc:
            self._reraise(exc, "")

    async def presign(self, handle: str, *, method: str = "GET", expires: int = 3600) -> str:
        """Presign the object in the store that owns it."""
        point, store, key = self._route_write(handle)
        try:
            return await store.presign(key, method=method, expires=expires)
        except StorageError as exc:
            self._reraise(exc, point)

    # ---- writing -------------------------------------------------------------------------

    async def new_data(self) -> str:
        """Allocate a fresh handle in the root mount (or the first mount, with no root)."""
        point, store = self._default
        try:
            return point + await store.new_data()
        except StorageError as exc:
            self._reraise(exc, point)

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
        """Store the bytes in the store that owns ``key`` (the default mount without one)."""
        conditions = self._write_conditions(overwrite, if_match)
        if key is None:
            point, store = self._default
            inner: str | None = None
        else:
            point, store, inner = self._route_write(key)
        try:
            stored = await store.put(
                source, key=inner, metadata=metadata, content_type=content_type, **conditions
            )
        except StorageError as exc:
            self._reraise(exc, point)
        return Handle(point + stored, getattr(stored, "etag", None))

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
        """Store the bytes under ``handle`` in the store that owns it; return the new etag."""
        conditions = self._write_conditions(overwrite, if_match)
        point, store, key = self._route_write(handle)
        try:
            return await store.assign(
                key, source, metadata=metadata, content_type=content_type, **conditions
            )
        except StorageError as exc:
            self._reraise(exc, point)

    async def copy(
        self,
        handle: str,
        *,
        key: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str:
        """Copy an object: within its mount as that store copies, across mounts by streaming.

        Without ``key`` the copy gets a fresh handle in the source's mount.
        """
        conditions = self._write_conditions(overwrite, if_match)
        target = self._route_write(key) if key is not None else None
        point, store, source = self._owner(handle)
        if target is None or target[1] is store:
            where = target[2] if target is not None else None
            try:
                copied = await store.copy(source, key=where, **conditions)
            except StorageError as exc:
                self._reraise(exc, point)
            return Handle(point + copied, getattr(copied, "etag", None))
        to_point, to_store, to_key = target
        try:
            stream = await store.get_read_stream(source)
        except StorageError as exc:
            self._reraise(exc, point)
        async with stream:
            info = stream.info
            try:
                stored = await to_store.put(
                    stream,
                    key=to_key,
                    metadata=info.metadata,
                    content_type=info.content_type,
                    **conditions,
                )
            except StorageError as exc:
                # The source's stream fails inside the put too: name each store's handle.
                names = {source: handle, to_key: to_point + to_key}
                reraise_renamed(exc, store=self.name, rename=names.get)
        return Handle(to_point + to_key, getattr(stored, "etag", None))

    async def delete(self, handle: str, *, if_match: str | None = None) -> None:
        """Delete the object from the store that owns it; a missing one is not an error."""
        self._check_delete_condition(if_match)
        route = self._route(handle)
        if route is None:
            if if_match is not None:
                raise PreconditionFailedError(
                    "no object exists for if_match to match", store=self.name, handle=handle
                )
            return
        point, store, key = route
        try:
            await store.delete(key, if_match=if_match)
        except StorageError as exc:
            self._reraise(exc, point)

    async def cleanup(self, *, older_than: float = 3600.0) -> dict[str, int]:
        """Clean up every mounted store that takes writes; return the summed counts."""
        writable = [s for s in self._mounts.values() if s.capabilities().get("writable", True)]
        return await cleanup_all(writable, older_than=older_than)

    # ---- description and lifecycle -------------------------------------------------------

    def capabilities(self) -> dict[str, Any]:
        """Return what every mount offers (see `mount_capabilities`)."""
        return mount_capabilities(self._mounts, new_handles=self._default[1])

    async def statistics(self) -> dict[str, Any]:
        """Return the statistics of every mount, and their capacity in total.

        Each capacity figure is the sum over the mounts, or None if any mount does not know
        it (mounts on one device count it once each).
        """
        per_mount = {point: await store.statistics() for point, store in self._mounts.items()}
        return {
            "capacity": total_capacity(list(per_mount.values())),
            self.LAYER: {"mounts": per_mount},
        }

    async def aclose(self) -> None:
        """Close every mounted store (each once); raise the first failure after trying all."""
        await close_all(list({id(store): store for store in self._mounts.values()}.values()))

    def __repr__(self) -> str:
        mounts = getattr(self, "_mounts", {})
        shown = ", ".join(f"{point!r}: {store!r}" for point, store in mounts.items())
        return f"<MountModule name={self.name!r} mounts={{{shown}}}>"
