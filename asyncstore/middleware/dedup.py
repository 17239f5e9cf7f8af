"""The dedup middleware: content-addressed storage with reference markers.

Identical content is stored once, named by the SHA-256 of the bytes this layer sees. Layout in
the inner store (or in the ``blobs`` store, when one is configured)::

    <key>                                the reference: a small JSON body naming the content,
                                         with the caller's metadata and content type
    _dedup/blobs/<sha256>                the content, stored once
    _dedup/refs/<sha256>/<sha256(key)>   one marker per reference to the content (body: key)
    _dedup/tmp/<uuid>                    a large upload in flight, before its hash is known

Keys under ``_dedup/`` are reserved: callers cannot use them and listings hide them.

Writing hashes the source while storing it (small sources in memory, large ones into a
temporary object that is then copied to its content address, server-side where the inner
store can), writes the marker, then the reference, then drops the marker of the content the
key referred to before. Deleting drops the reference, then its marker, and frees the content
only when no marker is left. Within one process these steps run under one lock, so content
is never freed while a reference uses it. Across processes sharing one inner store, the
steps are not atomic: a put of some content racing the deletion of its last other reference
can lose the content, and a crash can leave a marker or temporary object behind. `sweep`
repairs both: it drops markers whose reference moved on and frees unreferenced content and
temporaries older than a grace period; run it from one place if several processes write.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

import anyio

# Imported at run time: the registry reads the constructor's annotations to convert options.
from asyncstore.context import ModuleContext
from asyncstore.errors import ConfigError, IntegrityError, InvalidKeyError, NotFoundError
from asyncstore.info import ObjectInfo
from asyncstore.keys import validate_key, validate_prefix
from asyncstore.middleware._base import WrapperModule, cleanup_all, resolve_inner
from asyncstore.module import CONDITION_CAPABILITIES, StorageModule
from asyncstore.streams import ByteSource, ReadStream, check_range, iter_source

__all__ = ["RESERVED_PREFIX", "DedupModule"]

RESERVED_PREFIX = "_dedup/"
"""Keys under this prefix belong to the layer."""
_BLOBS = RESERVED_PREFIX + "blobs/"
_REFS = RESERVED_PREFIX + "refs/"
_TMP = RESERVED_PREFIX + "tmp/"
_SMALL = 1 << 20  # sources up to this size are hashed in memory, with no temporary object
_REF_LIMIT = 4096  # a reference body is far smaller; anything larger is not a reference
_OPEN_RETRIES = 3


@dataclass(frozen=True)
class _Ref:
    digest: str
    size: int

    def body(self) -> bytes:
        return json.dumps(
            {"asyncstore-dedup": 1, "sha256": self.digest, "size": self.size}
        ).encode()


async def _any(listing: AsyncIterator[ObjectInfo]) -> bool:
    """Return whether a listing yields anything, closing it either way."""
    try:
        async for _ in listing:
            return True
        return False
    finally:
        aclose = getattr(listing, "aclose", None)
        if aclose is not None:
            await aclose()


def _marker(digest: str, handle: str) -> str:
    return f"{_REFS}{digest}/{hashlib.sha256(handle.encode()).hexdigest()[:32]}"


class DedupModule(WrapperModule):
    """Stores identical content once: keys are references to content named by its SHA-256.

    A hundred puts of the same bytes keep one copy; deleting a reference frees the content
    only when no other reference uses it. Copies are references too (no bytes move). Reading
    a whole object checks its hash (`IntegrityError` on a mismatch). `statistics` reports
    logical and stored bytes, found by listing the layer's objects. See the module docstring
    for the layout and the (honest) guarantees across processes.

    Args:
        inner: The store for references (and content, unless ``blobs`` is given): a store
            name or URL (or a module). It must support named keys.
        blobs: A separate store for the content, markers and temporaries (name or URL).
    """

    LAYER: ClassVar[str] = "dedup"

    def __init__(
        self,
        *,
        inner: str | StorageModule,
        blobs: str | StorageModule | None = None,
        context: ModuleContext | None = None,
    ) -> None:
        super().__init__(resolve_inner(inner, context))
        self._blobs = self._inner if blobs is None else resolve_inner(blobs, context)
        for store in {id(self._inner): self._inner, id(self._blobs): self._blobs}.values():
            if not store.capabilities().get("named_keys"):
                raise ConfigError(
                    f"the dedup module needs stores with named keys; {store.name!r} has none"
                )
        self._lock = anyio.Lock()

    @property
    def blobs(self) -> StorageModule:
        """The store that keeps the content."""
        return self._blobs

    def _check_handle(self, handle: str) -> str:
        validate_key(handle, store=self.name)
        if handle.startswith(RESERVED_PREFIX):
            raise InvalidKeyError(
                f"keys under {RESERVED_PREFIX!r} are reserved by the dedup layer",
                store=self.name,
                handle=handle,
            )
        return handle

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
    ) -> None:
        """Store the bytes of ``source`` once by content and point ``handle`` at them.

        Raises:
            UnsupportedError: If a condition is given: a reference is two writes, which no
                store beneath can make conditional as one.
        """
        meta, ctype = self._check_write(handle, metadata, content_type, overwrite, if_match)
        digest, size, small, temp = await self._ingest(source)
        try:
            async with self._lock:
                blob = _BLOBS + digest
                if not await self._blobs.available(blob):
                    if temp is not None:
                        await self._blobs.copy(temp, key=blob)
                    else:
                        await self._blobs.put(small, key=blob)
                await self._link(handle, _Ref(digest, size), meta, ctype)
        finally:
            if temp is not None:
                await self._blobs.delete(temp)

    async def _ingest(self, source: ByteSource) -> tuple[str, int, bytes, str | None]:
        """Hash the source; return (digest, size, the bytes if small, the temporary key)."""
        hasher = hashlib.sha256()
        chunks = aiter(iter_source(source))
        buffer = bytearray()
        async for piece in chunks:
            hasher.update(piece)
            buffer += piece
            if len(buffer) > _SMALL:
                break
        else:
            return hasher.hexdigest(), len(buffer), bytes(buffer), None
        size = len(buffer)

        async def rest() -> AsyncIterator[bytes | memoryview]:
            nonlocal size
            yield bytes(buffer)
            buffer.clear()
            async for piece in chunks:
                hasher.update(piece)
                size += len(piece)
                yield piece

        temp = f"{_TMP}{uuid.uuid4().hex}"
        try:
            await self._blobs.put(rest(), key=temp)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._blobs.delete(temp)
            raise
        return hasher.hexdigest(), size, b"", temp

    async def _link(
        self, handle: str, ref: _Ref, metadata: Mapping[str, str], content_type: str | None
    ) -> None:
        """Point ``handle`` at ``ref``'s content (the lock is held)."""
        old = await self._ref_or_none(handle)
        await self._blobs.put(handle.encode(), key=_marker(ref.digest, handle))
        await self._inner.put(ref.body(), key=handle, metadata=metadata, content_type=content_type)
        if old is not None and old.digest != ref.digest:
            await self._unlink(handle, old.digest)

    async def _unlink(self, handle: str, digest: str) -> None:
        """Drop ``handle``'s marker on ``digest``; free the content if no marker is left."""
        await self._blobs.delete(_marker(digest, handle))
        if not await _any(self._blobs.list(f"{_REFS}{digest}/")):
            await self._blobs.delete(_BLOBS + digest)

    async def delete(self, handle: str, *, if_match: str | None = None) -> None:
        """Delete the reference; free its content when no other reference uses it."""
        self._check_handle(handle)
        self._check_delete_condition(if_match)
        async with self._lock:
            old = await self._ref_or_none(handle)
            await self._inner.delete(handle)
            if old is not None:
                await self._unlink(handle, old.digest)

    async def copy(
        self,
        handle: str,
        *,
        key: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str:
        """Copy by adding a reference to the same content; no bytes are copied."""
        self._check_handle(handle)
        self._write_conditions(overwrite, if_match)
        target = self._check_handle(key) if key is not None else await self.new_data()
        async with self._lock:
            info, ref = await self._read_ref(handle)
            await self._link(target, ref, info.metadata, info.content_type)
        return target

    # ---- reading -------------------------------------------------------------------------

    async def _read_ref(self, handle: str) -> tuple[ObjectInfo, _Ref]:
        async with await self._inner.get_read_stream(handle) as stream:
            info = stream.info
            body = await stream.read() if info.size <= _REF_LIMIT else b""
        try:
            parsed = json.loads(body)
            ref = _Ref(str(parsed["sha256"]), int(parsed["size"]))
            if parsed.get("asyncstore-dedup") != 1 or len(ref.digest) != 64:
                raise ValueError(ref.digest)
            int(ref.digest, 16)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise IntegrityError(
                "the stored object is not a dedup reference", store=self.name, handle=handle
            ) from None
        return info, ref

    async def _ref_or_none(self, handle: str) -> _Ref | None:
        try:
            return (await self._read_ref(handle))[1]
        except NotFoundError:
            return None

    def _outer(self, info: ObjectInfo, ref: _Ref) -> ObjectInfo:
        return replace(info, size=ref.size, etag=ref.digest)

    async def stat(self, handle: str) -> ObjectInfo:
        """Describe the object (one small read of its reference)."""
        self._check_handle(handle)
        info, ref = await self._read_ref(handle)
        return self._outer(info, ref)

    async def available(self, handle: str) -> bool:
        """Return whether a reference exists for ``handle``."""
        self._check_handle(handle)
        return await self._inner.available(handle)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Yield the references under ``prefix`` in key order, hiding the layer's objects."""
        validate_prefix(prefix, store=self.name)
        async for info in self._inner.list(prefix):
            if info.handle.startswith(RESERVED_PREFIX):
                continue
            try:
                _, ref = await self._read_ref(info.handle)
            except NotFoundError:
                continue  # deleted since the inner listing saw it
            yield self._outer(info, ref)

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None, if_match: str | None = None
    ) -> ReadStream:
        """Open a stream of the content ``handle`` refers to, in ``[start, end)``.

        Raises:
            NotFoundError: If no reference exists for ``handle``.
            IntegrityError: If the content is missing or has the wrong size.
        """
        check_range(start, end, store=self.name)
        self._check_handle(handle)
        self._check_read_condition(if_match)
        for _ in range(_OPEN_RETRIES):
            info, ref = await self._read_ref(handle)
            try:
                blob = await self._blobs.get_read_stream(_BLOBS + ref.digest, start=start, end=end)
            except NotFoundError:
                # The reference may have moved on (and its old content been freed) between
                # the two reads: read it again.
                if (await self._read_ref(handle))[1] != ref:
                    continue
                raise IntegrityError(
                    f"the content {ref.digest} is missing", store=self.name, handle=handle
                ) from None
            if blob.info.size != ref.size:
                await blob.aclose()
                raise IntegrityError(
                    f"the content {ref.digest} has {blob.info.size} bytes, not {ref.size}",
                    store=self.name,
                    handle=handle,
                )
            return _DedupStream(self._outer(info, ref), blob, store=self.name, start=start, end=end)
        raise IntegrityError(
            "the reference keeps changing; try again", store=self.name, handle=handle
        )

    # ---- maintenance and description ------------------------------------------------------

    async def sweep(self, *, older_than: float = 3600.0) -> dict[str, int]:
        """Repair after crashes and cross-process races; return what was removed.

        Drops markers whose reference no longer points at their content, then frees content
        without markers and temporary uploads, each only when older than ``older_than``
        seconds (so that puts in flight in other processes are left alone).
        """
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=older_than)

        def old(info: ObjectInfo) -> bool:
            return info.modified is None or info.modified < cutoff

        removed = Counter[str]()
        async with self._lock:
            referenced: set[str] = set()
            async for info in self._blobs.list(_REFS):
                digest = info.handle[len(_REFS) :].split("/", 1)[0]
                async with await self._blobs.get_read_stream(info.handle) as stream:
                    handle = (await stream.read()).decode("utf-8", "replace")
                try:
                    current = await self._ref_or_none(handle)
                except IntegrityError:
                    current = None
                if (current is None or current.digest != digest) and old(info):
                    await self._blobs.delete(info.handle)
                    removed["markers"] += 1
                else:
                    referenced.add(digest)
            async for info in self._blobs.list(_BLOBS):
                if info.handle[len(_BLOBS) :] not in referenced and old(info):
                    await self._blobs.delete(info.handle)
                    removed["blobs"] += 1
            async for info in self._blobs.list(_TMP):
                if old(info):
                    await self._blobs.delete(info.handle)
                    removed["temporaries"] += 1
        return {name: removed[name] for name in ("markers", "blobs", "temporaries")}

    async def cleanup(self, *, older_than: float = 3600.0) -> dict[str, int]:
        """`sweep` this layer, then clean up the inner module and the content store."""
        own = await self.sweep(older_than=older_than)
        return await cleanup_all(self._stores(), older_than=older_than, own=own)

    def _stores(self) -> builtins.list[StorageModule]:
        return [self._inner, self._blobs]

    async def statistics(self) -> dict[str, Any]:
        """Return the inner capacity plus logical vs stored bytes (by listing the layer)."""
        stats = await super().statistics()
        sizes: dict[str, int] = {}
        async for info in self._blobs.list(_BLOBS):
            sizes[info.handle[len(_BLOBS) :]] = info.size
        references: Counter[str] = Counter()
        async for info in self._blobs.list(_REFS):
            references[info.handle[len(_REFS) :].split("/", 1)[0]] += 1
        logical = sum(sizes.get(digest, 0) * count for digest, count in references.items())
        stored = sum(sizes.values())
        stats[self.LAYER] = {
            "algorithm": "sha256",
            "references": sum(references.values()),
            "blobs": len(sizes),
            "logical_bytes": logical,
            "stored_bytes": stored,
            "ratio": round(logical / stored, 3) if stored else None,
        }
        if self._blobs is not self._inner:
            stats["blobs"] = await self._blobs.statistics()
        return stats

    def capabilities(self) -> dict[str, Any]:
        """Return the inner module's capabilities; copies are references (server-side).

        No condition is offered: a reference is several writes to two stores.
        """
        effective = super().capabilities()
        effective.update(dict.fromkeys(CONDITION_CAPABILITIES, False))
        effective["server_side_copy"] = True
        effective["range_read"] = bool(self._blobs.capabilities().get("range_read"))
        effective["seek"] = bool(self._blobs.capabilities().get("seek"))
        return effective

    async def aclose(self) -> None:
        """Close the inner module and the content store, which this module owns."""
        try:
            if self._blobs is not self._inner:
                await self._blobs.aclose()
        finally:
            await self._inner.aclose()


class _DedupStream(ReadStream):
    """Reads the content through; checks its hash when it is read whole, in order."""

    def __init__(
        self, info: ObjectInfo, blob: ReadStream, *, store: str, start: int, end: int | None
    ) -> None:
        super().__init__(info, start=start, end=end)
        self._blob = blob
        self._store = store
        self._base = min(start, info.size)
        whole = self._base == 0 and self.size == info.size
        self._hasher: Any = hashlib.sha256() if whole else None
        self._next = 0

    async def _read_at(self, offset: int, max_bytes: int) -> bytes:
        position = offset - self._base
        if self._blob.tell() != position:
            await self._blob.seek(position)
        data = await self._blob.read(max_bytes)
        if not data:
            raise IntegrityError(
                "the content ends early", store=self._store, handle=self.info.handle
            )
        self._check(offset, data)
        return data

    def _check(self, offset: int, data: bytes) -> None:
        if self._hasher is None:
            return
        if offset != self._next:
            self._hasher = None  # not read in order: nothing to check
            return
        self._hasher.update(data)
        self._next += len(data)
        if self._next == self.info.size and self._hasher.hexdigest() != self.info.etag:
            self._hasher = None
            raise IntegrityError(
                "the content does not match its hash", store=self._store, handle=self.info.handle
            )

    async def _close(self) -> None:
        await self._blob.aclose()
