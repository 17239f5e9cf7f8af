"""`FileSystemModule`: objects as plain files under a root directory."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from functools import partial
from typing import Any, ClassVar, NamedTuple, TypeVar

import anyio.to_thread

from asyncstore import StorageModule, check_conditions
from asyncstore.errors import InvalidKeyError, PreconditionFailedError, StorageError
from asyncstore.info import Handle, ObjectInfo
from asyncstore.keys import validate_content_type, validate_key, validate_metadata, validate_prefix
from asyncstore.streams import ByteSource, ReadStream, check_range, iter_source
from asyncstore_fs._config import options_from_url as parse_url
from asyncstore_fs._config import settle
from asyncstore_fs._delete import delete_object, remove_empty_parents
from asyncstore_fs._errors import translate_os_error
from asyncstore_fs._layout import Layout, close_quietly, split_key
from asyncstore_fs._listing import describe_entries, remove_leftovers, scan_directory
from asyncstore_fs._metadata import encode, sidecar_name
from asyncstore_fs._read import FileReadStream, Opened, open_object
from asyncstore_fs._worker import BulkWorker
from asyncstore_fs._write import (
    PendingWrite,
    abort,
    commit,
    copy_object,
    open_temp,
    write_all,
    write_object,
)

__all__ = ["FileSystemModule"]


class _Conditions(NamedTuple):
    overwrite: bool
    if_match: str | None


T = TypeVar("T")

_SMALL = 256 << 10
"""Sources up to this size are collected and written in one step by the bulk worker."""
_BATCH = 8 << 20
"""Larger sources are written in batches of about this many bytes per thread hand-off."""
_EAGER = 64 << 10
"""Ranges up to this size are read when the object is opened."""
_DESCRIBE_BATCH = 256
"""How many files of one directory `list` describes per worker call."""


def _frozen(chunk: bytes | memoryview) -> bool:
    # A chunk we may keep after asking for the next one: its bytes cannot change.
    return isinstance(chunk, bytes) or chunk.readonly


def _close_opened(opened: Opened) -> None:
    if opened.fd >= 0:
        close_quietly(opened.fd)


class FileSystemModule(StorageModule):
    """Stores each object as a plain file under a root directory, written atomically.

    The object under key ``a/b/c.txt`` is the file ``<root>/a/b/c.txt`` holding exactly the
    bytes put, so other tools can read the tree. Handles made by `new_data` (and `put`
    without a key) fan out as ``xx/yy/<32 hex digits>``. A write goes to a temporary file in
    the key's directory, which is flushed and renamed over the key, so readers see the old
    object or the new one, never a partial one; temporaries are invisible to `list`, and
    `remove_temporaries` removes those left by crashed processes. No path is followed out of
    the root through a symlink. Metadata and content types live in the ``user.asyncstore``
    extended attribute, or in a sidecar file where the filesystem has none.

    A key cannot be both an object and a prefix of other keys (``a`` and ``a/b``): a
    filesystem cannot hold a file and a directory of the same name, so the second write
    raises `AlreadyExistsError` and stores nothing. A key segment may be at most as long as
    the filesystem's name limit (255 bytes on most), less the 5 bytes a sidecar name adds
    where metadata lives in sidecar files; ``capabilities()["max_segment_bytes"]`` says how
    long, and longer segments raise `InvalidKeyError` before any I/O.

    Args:
        root: The directory holding the objects.
        fsync: Flush every write's file and directory to the disk before it returns, so
            objects survive a power loss; False leaves flushing to the operating system.
        create: Create ``root`` (and its parents) if it does not exist.
        xattrs: Keep metadata in extended attributes (True) or sidecar files (False);
            None probes the filesystem and prefers extended attributes.
        threads: How many threads run quick writes and deletes, each thread running the
            calls queued meanwhile in bulk (changes to one key always share a thread); several
            let slow metadata updates overlap. Quick reads share one more thread.
    """

    name = "fs"
    CAPABILITIES: ClassVar[Mapping[str, Any]] = {
        "max_object_size": None,
        "conditional_create": True,
        "conditional_replace": True,
        "conditional_delete": True,
        "conditional_read": True,
    }

    def __init__(
        self,
        *,
        root: str,
        fsync: bool = True,
        create: bool = True,
        xattrs: bool | None = None,
        threads: int = 4,
    ) -> None:
        settings = settle(root, fsync=fsync, create=create, xattrs=xattrs, threads=threads)
        self._layout = Layout(settings.root)
        self._fsync = fsync
        self._sidecar = settings.sidecar
        # A sidecar's name is the object's name plus a suffix, and must fit the same limit.
        suffix = len(sidecar_name("").encode()) if settings.sidecar else 0
        self._segment_max = settings.name_max - suffix
        self._reader = BulkWorker("asyncstore-fs-read")
        self._writers = [BulkWorker(f"asyncstore-fs-write-{i}") for i in range(threads)]

    @property
    def root(self) -> str:
        """The resolved root directory."""
        return self._layout.root

    @classmethod
    def options_from_url(cls, url: str) -> dict[str, Any]:
        """Turn ``fs:///abs/root?fsync=false`` (or ``file://``) into constructor options.

        The path, percent-decoded, is ``root``; query parameters are the other options.

        Raises:
            ConfigError: If the URL names a host or has no absolute path.
        """
        return parse_url(url)

    # ---- plumbing --------------------------------------------------------------------------

    async def _run(
        self,
        handle: str | None,
        call: Callable[[], T],
        *,
        slow: bool = False,
        write: bool = False,
        on_abandon: Callable[[T], object] | None = None,
    ) -> T:
        """Run a blocking call off the event loop, translating its `OSError`.

        Quick calls share the bulk worker; ``slow`` ones (fsync, big transfers) get their own
        thread so that they never hold up the quick ones.
        """
        # What map_os_errors does, inline: this is every operation's hot path.
        try:
            if slow:
                return await anyio.to_thread.run_sync(call)
            worker = self._writer(handle) if write and handle else self._reader
            return await worker.run(call, on_abandon=on_abandon)
        except StorageError as exc:
            if exc.store is None:
                exc.store = self.name
            if exc.handle is None:
                exc.handle = handle
            raise
        except OSError as exc:
            raise translate_os_error(exc, store=self.name, handle=handle) from exc

    def _key(self, handle: object) -> str:
        """Check a key against the key rules and this filesystem's segment limit."""
        key = validate_key(handle, store=self.name)
        # A UTF-8 character takes at most 4 bytes: most keys need no closer look.
        if len(key) * 4 > self._segment_max:
            self._check_segments(key.split("/"), key)
        return key

    def _check_segments(self, segments: list[str], key: str) -> None:
        for segment in segments:
            size = len(segment.encode())
            if size > self._segment_max:
                raise InvalidKeyError(
                    f"key has a segment of {size} bytes; this filesystem takes at most "
                    f"{self._segment_max}",
                    store=self.name,
                    handle=key,
                )

    def _writer(self, key: str) -> BulkWorker:
        # Every change to one key goes to the same thread, so changes run in the order made.
        writers = self._writers
        return writers[hash(key) % len(writers)] if len(writers) > 1 else writers[0]

    # ---- writing ---------------------------------------------------------------------------

    async def new_data(self) -> str:
        """Return a fresh handle, fanned out as ``xx/yy/<32 hex digits>``."""
        digits = uuid.uuid4().hex
        return f"{digits[:2]}/{digits[2:4]}/{digits}"

    async def assign(
        self,
        handle: str,
        source: ByteSource,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str:
        """Store the bytes of ``source`` under ``handle``, atomically; return the new etag.

        Conditions are checked under the key's lock at the moment of the rename, so they
        hold against writers in every process (see ``asyncstore_fs._conditions``).

        Raises:
            InvalidKeyError: If ``handle`` breaks the key rules or has a segment too long here.
            InvalidMetadataError: If ``metadata`` or ``content_type`` is malformed.
            AlreadyExistsError: If the key and a stored key would be a file and a directory,
                or ``overwrite`` is False and an object exists.
            PreconditionFailedError: If ``if_match`` is not the current object's etag.
            PermissionDeniedError: If the filesystem refuses, or a symlink leads out of root.
            StorageFullError: If the disk or a quota is full.
        """
        key = self._key(handle)
        check_conditions(overwrite, if_match, store=self.name)
        blob = encode(
            validate_metadata(metadata, store=self.name),
            validate_content_type(content_type, store=self.name),
        )
        conditions = _Conditions(overwrite, if_match)
        try:
            return await self._write(key, source, blob, conditions)
        except Exception:
            # A failed write leaves no directories behind that it made for the key (the same
            # thread as the write's own clean-up, so after it).
            parent, _ = split_key(key)
            if parent:
                cleanup = partial(remove_empty_parents, self._layout, parent)
                await self._run(key, cleanup, write=True)
            raise

    async def _write(
        self, key: str, source: ByteSource, blob: bytes | None, conditions: _Conditions
    ) -> str:
        write = partial(
            write_object,
            self._layout,
            key,
            fsync=self._fsync,
            sidecar=self._sidecar,
            overwrite=conditions.overwrite,
            if_match=conditions.if_match,
        )
        if isinstance(source, (bytes, bytearray)) or (
            isinstance(source, memoryview) and source.c_contiguous
        ):
            view = memoryview(source).cast("B")
            slow = self._fsync or view.nbytes > _SMALL
            return await self._run(key, partial(write, [view], blob), slow=slow, write=True)
        chunks: list[bytes | memoryview] = []
        size = 0
        stream = iter_source(source)
        try:
            async for chunk in stream:
                chunks.append(chunk if _frozen(chunk) else bytes(chunk))
                size += len(chunk)
                if size > _SMALL:
                    break
            else:
                call = partial(write, chunks, blob)
                return await self._run(key, call, slow=self._fsync, write=True)
            return await self._write_stream(key, chunks, stream, blob, conditions)
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _write_stream(
        self,
        key: str,
        batch: list[bytes | memoryview],
        stream: AsyncIterator[bytes | memoryview],
        blob: bytes | None,
        conditions: _Conditions,
    ) -> str:
        pending: PendingWrite = await self._run(
            key,
            partial(open_temp, self._layout, key, fsync=self._fsync),
            write=True,
            on_abandon=abort,
        )
        committing = False
        try:
            size = sum(len(chunk) for chunk in batch)
            async for chunk in stream:
                batch.append(chunk)
                size += len(chunk)
                # A chunk whose bytes may change once we ask for the next one is written now.
                if size >= _BATCH or not _frozen(chunk):
                    await self._run(key, partial(write_all, pending, batch), slow=True)
                    batch, size = [], 0
            if batch:
                await self._run(key, partial(write_all, pending, batch), slow=True)
            finish = partial(
                commit,
                self._layout,
                pending,
                blob,
                fsync=self._fsync,
                sidecar=self._sidecar,
                overwrite=conditions.overwrite,
                if_match=conditions.if_match,
            )
            committing = True
            return await self._run(key, finish, slow=self._fsync, write=True)
        except BaseException:
            if committing:
                # Cancelled while the commit may still be running in its thread: release
                # the pending write after it, in the same thread.
                self._writer(key).post(abort, pending)
            else:
                abort(pending)  # nothing else uses it; remove the temporary file now
            raise

    # ---- reading ---------------------------------------------------------------------------

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None, if_match: str | None = None
    ) -> ReadStream:
        """Open a stream of the object's bytes in ``[start, end)``.

        Small ranges are read at once, larger ones as the stream is read (skipped bytes never).
        The stream reads the version it opened (its file), whatever writes follow.

        Raises:
            NotFoundError: If no object is stored under ``handle``.
            InvalidRangeError: If ``start`` is negative or ``end`` is before ``start``.
            PreconditionFailedError: If ``if_match`` is not the object's etag.
        """
        check_range(start, end, store=self.name)
        key = self._key(handle)
        check_conditions(if_match=if_match, store=self.name)
        opened = await self._run(
            key,
            partial(
                open_object,
                self._layout,
                key,
                sidecar=self._sidecar,
                keep=True,
                start=start,
                end=end,
                eager=_EAGER,
            ),
            on_abandon=_close_opened,
        )
        if if_match is not None and opened.info.etag != if_match:
            _close_opened(opened)
            raise PreconditionFailedError(
                "the object is not the version if_match names", store=self.name, handle=key
            )
        return FileReadStream(opened, start=start, end=end, store=self.name)

    async def stat(self, handle: str) -> ObjectInfo:
        """Describe the object: size, UTC modification time, etag, content type, metadata.

        The etag is made of the file's inode, modification time and size.

        Raises:
            NotFoundError: If no object is stored under ``handle``.
        """
        key = self._key(handle)
        call = partial(open_object, self._layout, key, sidecar=self._sidecar)
        return (await self._run(key, call)).info

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Yield the objects whose keys start with ``prefix``, in key order.

        Directories are read one at a time as the walk reaches them; the module's temporary
        and sidecar files never appear, and symlinked directories are not walked.

        Raises:
            InvalidKeyError: If the prefix could never match a valid key.
        """
        validate_prefix(prefix, store=self.name)
        dir_key, _, name_prefix = prefix.rpartition("/")
        if dir_key:
            self._check_segments(dir_key.split("/"), prefix)
        async for info in self._walk(dir_key, name_prefix, prefix):
            yield info

    async def _walk(self, dir_key: str, name_prefix: str, prefix: str) -> AsyncIterator[ObjectInfo]:
        scan = partial(scan_directory, self._layout, dir_key, name_prefix)
        entries = await self._run(prefix or None, scan)
        index = 0
        while index < len(entries):
            name, is_dir = entries[index]
            if is_dir:
                index += 1
                child = f"{dir_key}/{name}" if dir_key else name
                async for info in self._walk(child, "", prefix):
                    yield info
                continue
            names: list[str] = []
            while index < len(entries) and not entries[index][1] and len(names) < _DESCRIBE_BATCH:
                names.append(entries[index][0])
                index += 1
            describe = partial(
                describe_entries, self._layout, dir_key, names, sidecar=self._sidecar
            )
            for info in await self._run(prefix or None, describe):
                yield info

    # ---- other operations ------------------------------------------------------------------

    async def delete(self, handle: str, *, if_match: str | None = None) -> None:
        """Delete the object, and the directories it leaves empty; a missing one is fine.

        Raises:
            PermissionDeniedError: If the filesystem refuses, or a symlink leads out of root.
            PreconditionFailedError: If ``if_match`` is not the object's etag, or there is
                no object.
        """
        key = self._key(handle)
        check_conditions(if_match=if_match, store=self.name)
        call = partial(
            delete_object,
            self._layout,
            key,
            fsync=self._fsync,
            sidecar=self._sidecar,
            if_match=if_match,
        )
        await self._run(key, call, slow=self._fsync, write=True)

    async def copy(
        self,
        handle: str,
        *,
        key: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str:
        """Copy the object with its metadata inside the filesystem (``copy_file_range``).

        Raises:
            NotFoundError: If no object is stored under ``handle``.
            AlreadyExistsError: If ``key`` clashes with a prefix, as for `put`, or
                ``overwrite`` is False and an object exists there.
            PreconditionFailedError: If ``if_match`` is not the target's current etag.
        """
        source = self._key(handle)
        check_conditions(overwrite, if_match, store=self.name)
        target = self._key(key) if key is not None else await self.new_data()
        call = partial(
            copy_object,
            self._layout,
            source,
            target,
            fsync=self._fsync,
            sidecar=self._sidecar,
            overwrite=overwrite,
            if_match=if_match,
        )
        etag = await self._run(source, call, slow=True)
        return Handle(target, etag)

    async def statistics(self) -> dict[str, Any]:
        """Return the filesystem's capacity (``statvfs``), its inode counts and settings.

        Counting objects would mean walking the whole tree, so it is not included.
        """
        status = await self._run(None, partial(os.statvfs, self._layout.root))
        unit = status.f_frsize
        return {
            "capacity": {
                "total": status.f_blocks * unit,
                "used": (status.f_blocks - status.f_bfree) * unit,
                "free": status.f_bavail * unit,
            },
            "inodes": {"total": status.f_files, "free": status.f_favail},
            "root": self._layout.root,
            "fsync": self._fsync,
            "metadata_storage": "sidecar" if self._sidecar else "xattr",
        }

    def capabilities(self) -> dict[str, Any]:
        """Return the capabilities, with this filesystem's longest key segment."""
        return {**self.class_capabilities(), "max_segment_bytes": self._segment_max}

    async def cleanup(self, *, older_than: float = 3600.0) -> dict[str, int]:
        """Remove temporary files and orphaned sidecars; return ``{"temporaries": n}``.

        The contract's cleanup call (see `remove_temporaries`).
        """
        return {"temporaries": await self.remove_temporaries(older_than=older_than)}

    async def remove_temporaries(self, *, older_than: float = 3600.0) -> int:
        """Remove leftovers of interrupted writes: temporary files and orphaned sidecars.

        A write in progress keeps its temporary file fresh only while it runs, so only files
        older than ``older_than`` seconds are removed; run this from a maintenance job (or
        with ``older_than=0`` when no other process is writing).

        Returns:
            How many files were removed.
        """
        call = partial(remove_leftovers, self._layout, older_than)
        return await self._run(None, call, slow=True)

    async def aclose(self) -> None:
        """Stop the worker thread; the module can still be used (it restarts it)."""
        for worker in [self._reader, *self._writers]:
            thread = worker.close()
            if thread is not None:
                await anyio.to_thread.run_sync(thread.join)
