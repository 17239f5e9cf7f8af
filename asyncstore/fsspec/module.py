"""`FsspecModule`: any fsspec filesystem (sftp, gcs, azure, http, hdfs...) as an asyncstore store.

Configured by protocol and the filesystem's own options::

    [stores.remote]
    module = "fsspec"
    protocol = "sftp"
    root = "/srv/blobs"
    host = "files.example.com"
    username = "app"
    password = "${SFTP_PASSWORD}"

or by URL: ``fsspec+PROTOCOL://...`` is the filesystem's own URL with ``fsspec+`` in front
(``fsspec+sftp://app@files.example.com/srv/blobs``, ``fsspec+memory:///scratch``); its query
gives further options, read as JSON where they parse (``?anon=true&block_size=1048576``).
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import tempfile
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import anyio
import anyio.to_thread

from asyncstore.errors import ConfigError, NotFoundError, PluginLoadError
from asyncstore.fsspec._driver import FilesystemDriver, map_fs_errors
from asyncstore.fsspec._stream import AsyncFileReadStream, FileReadStream
from asyncstore.fsspec._traits import Traits, traits_of
from asyncstore.info import Handle, ObjectInfo
from asyncstore.keys import (
    validate_content_type,
    validate_key,
    validate_metadata,
    validate_prefix,
)
from asyncstore.module import StorageModule
from asyncstore.streams import (
    ByteSource,
    BytesReadStream,
    ReadStream,
    check_range,
    iter_source,
)

if TYPE_CHECKING:
    from asyncstore.context import ModuleContext

__all__ = ["FsspecModule"]

SPOOL_LIMIT = 8 << 20
"""Writes to async filesystems larger than this are spooled to a temporary file and uploaded
with ``put_file``; smaller ones are sent with one ``pipe_file``."""


def _filesystem_class(protocol: str) -> type[Any]:
    try:
        import fsspec
    except ImportError as exc:
        raise ImportError(
            "the fsspec storage module needs fsspec: pip install 'asyncstore[fsspec]'"
        ) from exc

    try:
        return fsspec.get_filesystem_class(protocol)  # type: ignore[no-any-return]
    except ValueError as exc:
        raise ConfigError(f"fsspec knows no protocol {protocol!r}: {exc}") from exc
    except ImportError as exc:
        raise PluginLoadError(
            f"the fsspec protocol {protocol!r} needs a package that is not installed: {exc}"
        ) from exc


def _literal(value: str) -> Any:
    """Read a URL query value as JSON where it parses (true, 3, {...}), else as text."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def _modified(entry: Mapping[str, Any]) -> datetime | None:
    for name in ("LastModified", "last_modified", "mtime", "modified", "updated", "created"):
        value = entry.get(name)
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, timezone.utc)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return None


class FsspecModule(StorageModule):
    """Stores objects as files of any fsspec filesystem, under a root path.

    The object under key ``a/b.txt`` is the file ``<root>/a/b.txt``. Async filesystems (s3fs,
    gcsfs...) are driven on the running event loop (asyncio only); blocking ones (local, memory,
    sftp...) in worker threads. fsspec has no portable user metadata, content types or
    conditional writes, so this module keeps none (metadata and content types given to `put`
    are checked and dropped) and declares so in `capabilities()`. Writes are all-or-nothing
    (``atomic_writes``) where the filesystem is known to publish files whole (memory, object
    stores, local files whose temporary directory shares their filesystem); the other
    filesystems are assumed to show partial files, unless ``atomic_writes`` says otherwise.

    Args:
        protocol: The fsspec protocol (``sftp``, ``s3``, ``gcs``, ``memory``, ``file``...).
        root: The directory (or bucket and prefix) holding the objects.
        atomic_writes: Declare whether writes are all-or-nothing; None: known filesystems only.
        **storage_options: The filesystem's own options (host, credentials, endpoint...).
    """

    name = "fsspec"
    CAPABILITIES: ClassVar[Mapping[str, Any]] = {
        "metadata": False,
        "atomic_writes": False,
        "server_side_copy": False,
    }

    def __init__(
        self,
        *,
        protocol: str,
        root: str = "",
        atomic_writes: bool | None = None,
        context: ModuleContext | None = None,
        **storage_options: Any,
    ) -> None:
        if not isinstance(protocol, str) or not protocol:
            raise ConfigError(f"protocol must name an fsspec protocol, not {protocol!r}")
        if context is not None:
            self.name = context.store_name
        cls = _filesystem_class(protocol)
        self._protocol = protocol
        self._root = str(cls._strip_protocol(root)).rstrip("/") if root else ""
        self._traits: Traits = traits_of(protocol, self._root)
        self._atomic = self._traits.atomic_writes if atomic_writes is None else atomic_writes
        options = {**self._traits.options, "use_listings_cache": False, **storage_options}
        self._driver = FilesystemDriver(cls, options, self.name)

    @classmethod
    def options_from_url(cls, url: str) -> dict[str, Any]:
        """Turn ``fsspec+PROTOCOL://location?option=value`` into options.

        The location is parsed by the filesystem itself (its root path, and options such as
        host and user); query values are read as JSON where they parse.

        Raises:
            ConfigError: If the URL names no protocol.
        """
        parts = urlsplit(url)
        _, plus, protocol = parts.scheme.partition("+")
        if not plus or not protocol:
            raise ConfigError(
                "fsspec store URLs name the filesystem: fsspec+PROTOCOL://..., for example "
                "fsspec+memory:///scratch or fsspec+sftp://user@host/srv/data"
            )
        fs_class = _filesystem_class(protocol)
        inner = f"{protocol}://{parts.netloc}{parts.path}"
        options: dict[str, Any] = dict(fs_class._get_kwargs_from_urls(inner))
        options.update(
            (name, _literal(value))
            for name, value in parse_qsl(parts.query, keep_blank_values=True)
        )
        return {"protocol": protocol, "root": fs_class._strip_protocol(inner), **options}

    # ---- paths -----------------------------------------------------------------------------

    def _path(self, handle: str) -> str:
        key = validate_key(handle, store=self.name)
        return f"{self._root}/{key}" if self._root else key

    def _key_of(self, name: str) -> str:
        path = str(self._driver.cls._strip_protocol(name))
        if self._root:
            path = path[len(self._root) :] if path.startswith(self._root) else path
        return path.lstrip("/")

    def _info(self, handle: str, entry: Mapping[str, Any]) -> ObjectInfo:
        if entry.get("type", "file") != "file":
            raise self._not_found(handle)
        etag = entry.get("ETag") or entry.get("etag")
        return ObjectInfo(
            handle=handle,
            size=int(entry.get("size") or 0),
            modified=_modified(entry),
            etag=etag if isinstance(etag, str) else None,
        )

    # ---- writing ---------------------------------------------------------------------------

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
        """Store the bytes of ``source`` as the file of ``handle`` (metadata is not kept)."""
        path = self._path(handle)
        self._write_conditions(overwrite, if_match)
        validate_metadata(metadata, store=self.name)
        validate_content_type(content_type, store=self.name)
        chunks = iter_source(source)
        # The first chunk before any I/O: a source of the wrong kind fails here.
        first = await anext(chunks, None)
        if self._driver.is_async or self._traits.in_memory:
            await self._write_whole(handle, path, first, chunks)
        else:
            await self._write_transaction(handle, path, first, chunks)

    async def _write_whole(
        self,
        handle: str,
        path: str,
        first: bytes | memoryview | None,
        chunks: AsyncIterator[bytes | memoryview],
    ) -> None:
        """Gather the bytes (spooling large ones to disk) and store them in one call."""
        buffer = bytearray(first or b"")
        spill: Any = None
        try:
            async for chunk in chunks:
                if spill is None:
                    buffer += chunk
                    if len(buffer) > SPOOL_LIMIT and not self._traits.in_memory:
                        spill = await anyio.to_thread.run_sync(
                            lambda: tempfile.NamedTemporaryFile(delete=False)
                        )
                        await anyio.to_thread.run_sync(spill.write, bytes(buffer))
                        buffer = bytearray()
                else:
                    await anyio.to_thread.run_sync(spill.write, chunk)
            if spill is None:
                await self._driver.call("pipe_file", path, bytes(buffer), handle=handle)
                return
            await anyio.to_thread.run_sync(spill.close)
            await self._driver.call("put_file", spill.name, path, handle=handle)
        finally:
            if spill is not None:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(spill.close)
                    with contextlib.suppress(OSError):
                        await anyio.to_thread.run_sync(os.unlink, spill.name)

    async def _write_transaction(
        self,
        handle: str,
        path: str,
        first: bytes | memoryview | None,
        chunks: AsyncIterator[bytes | memoryview],
    ) -> None:
        """Stream the bytes into a file opened outside any transaction's autocommit."""
        fs = await self._driver.filesystem()
        file = await self._driver.run(fs.open, path, "wb", autocommit=False, handle=handle)
        try:
            if first is not None:
                await self._driver.run(file.write, first, handle=handle)
            async for chunk in chunks:
                await self._driver.run(file.write, chunk, handle=handle)
            await self._driver.run(file.close, handle=handle)
            await self._driver.run(file.commit, handle=handle)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_discard, file)
            raise

    # ---- reading ---------------------------------------------------------------------------

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None, if_match: str | None = None
    ) -> ReadStream:
        """Open a stream of ``[start, end)`` that reads one version of the file.

        It holds the open file (a snapshot, for in-memory filesystems); a ranged stream of an
        async filesystem fetches each range it reads instead.
        """
        check_range(start, end, store=self.name)
        path = self._path(handle)
        self._check_read_condition(if_match)
        entry = await self._stat_path(handle, path)
        fs = await self._driver.filesystem()
        if self._traits.in_memory:
            data = await self._driver.call("cat_file", path, handle=handle)
            return BytesReadStream(data, _sized(entry, len(data)), start=start, end=end)
        if self._driver.is_async:
            file = None
            if start == 0:
                with map_fs_errors(self.name, handle):
                    file = await fs.open_async(path, "rb")
                    if getattr(file, "size", None) is None:
                        await file.read(0)  # opens the stream and learns its size
            size = getattr(file, "size", None)
            info = entry if size is None else _sized(entry, size)
            return AsyncFileReadStream(self._driver, path, file, info, start=start, end=end)
        file = await self._driver.run(fs.open, path, "rb", handle=handle)
        size = getattr(file, "size", None)
        info = _sized(entry, size) if isinstance(size, int) else entry
        return FileReadStream(file, info, self.name, start=start, end=end)

    async def stat(self, handle: str) -> ObjectInfo:
        """Describe the file of ``handle`` (size, modification time, etag where known)."""
        return await self._stat_path(handle, self._path(handle))

    async def _stat_path(self, handle: str, path: str) -> ObjectInfo:
        entry = await self._driver.call("info", path, handle=handle)
        return self._info(handle, entry)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Yield the files whose keys start with ``prefix``, in key order.

        fsspec's ``find`` is not paged: the files below the prefix's directory are listed in
        one call before the first is yielded. Files whose names break asyncstore's key rules
        (written by other tools) are skipped.
        """
        validate_prefix(prefix, store=self.name)
        directory = prefix.rpartition("/")[0]
        base = "/".join(part for part in (self._root, directory) if part)
        try:
            found = await self._driver.call("find", base or self._root, detail=True)
        except NotFoundError:
            return
        infos: builtins.list[ObjectInfo] = []
        for name, entry in found.items():
            key = self._key_of(name)
            if not key.startswith(prefix):
                continue
            try:
                validate_key(key)
                infos.append(self._info(key, entry))
            except (ValueError, NotFoundError):
                continue  # not addressable as a key, or not a file
        for info in sorted(infos, key=lambda item: item.handle):
            yield info

    # ---- other operations ------------------------------------------------------------------

    async def delete(self, handle: str, *, if_match: str | None = None) -> None:
        """Delete the file; a missing one is not an error."""
        path = self._path(handle)
        self._check_delete_condition(if_match)
        with contextlib.suppress(NotFoundError):
            await self._driver.call("rm_file", path, handle=handle)

    async def copy(
        self,
        handle: str,
        *,
        key: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str:
        """Copy inside the filesystem where that is all-or-nothing, else through this process."""
        if not self._traits.server_side_copy:
            return await super().copy(handle, key=key, overwrite=overwrite, if_match=if_match)
        source = self._path(handle)
        self._write_conditions(overwrite, if_match)
        target = validate_key(key, store=self.name) if key is not None else await self.new_data()
        await self._stat_path(handle, source)  # a missing source is NotFoundError, by handle
        if target != handle:
            await self._driver.call("cp_file", source, self._path(target), handle=handle)
        return Handle(target)

    def capabilities(self) -> dict[str, Any]:
        """Return the capabilities of this filesystem as the module drives it (no I/O)."""
        return {
            **self.class_capabilities(),
            "atomic_writes": self._atomic,
            "server_side_copy": self._traits.server_side_copy,
            "fsspec_protocol": self._protocol,
        }

    async def aclose(self) -> None:
        """Release the filesystem's connections."""
        await self._driver.aclose()

    def __repr__(self) -> str:
        return f"<FsspecModule name={self.name!r} protocol={self._protocol!r}>"


def _sized(info: ObjectInfo, size: int) -> ObjectInfo:
    """Return ``info`` for the version an open file holds, whose size is ``size``.

    When the file was replaced between the `stat` and the open, the other fields describe
    another version and are dropped.
    """
    if size == info.size:
        return info
    return ObjectInfo(handle=info.handle, size=size)


def _discard(file: Any) -> None:
    """Close and throw away a transactional file that was not finished."""
    with contextlib.suppress(Exception):
        file.close()
    with contextlib.suppress(Exception):
        file.discard()
