"""Atomic writes: a temporary file in the key's directory, fsync, rename, directory fsync.

These are blocking functions, run in worker threads by the module. A `PendingWrite` is the
state of one write between its steps; `abort` releases it and may be called at any point, any
number of times.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass

from asyncstore.errors import AlreadyExistsError, NotFoundError, StorageError
from asyncstore_fs._conditions import (
    directory_locked,
    etag_of,
    rename_no_replace,
    require_version,
    stamp_version,
)
from asyncstore_fs._layout import Layout, close_quietly, split_key, temp_name
from asyncstore_fs._metadata import (
    XATTR_NAME,
    read_sidecar,
    read_xattr,
    remove_sidecar,
    write_sidecar,
)

__all__ = ["PendingWrite", "abort", "commit", "copy_object", "open_temp", "write_object"]

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
# A directory removed by a concurrent delete between opening it and creating the temporary
# file in it is simply made again; this many times in a row means something is wrong.
_ATTEMPTS = 16
_COPY_STEP = 1 << 30


@dataclass
class PendingWrite:
    """A write in progress: the open key directory and the open temporary file in it."""

    key: str
    """The key being written."""
    dir_fd: int
    """The key's directory, open (or -1 once released)."""
    fd: int
    """The temporary file, open for writing (or -1 once closed)."""
    temp: str | None
    """The temporary file's name in the directory (None once renamed or removed)."""


def open_temp(layout: Layout, key: str, *, fsync: bool = False) -> PendingWrite:
    """Create the key's directories if needed and a temporary file in the last one.

    With ``fsync``, each directory created is flushed into its parent.

    Raises:
        AlreadyExistsError: If a parent of the key is an object.
        PermissionDeniedError: If the key's directory is reached through a symlink that leads
            outside the root.
    """
    parent, _ = split_key(key)
    for _attempt in range(_ATTEMPTS):
        try:
            dir_fd = layout.open_dir(parent)
        except (FileNotFoundError, NotADirectoryError):
            if not parent:
                raise
            try:
                dir_fd = layout.make_dirs(parent, key, fsync=fsync)
            except FileNotFoundError:  # a directory on the way was just removed by a delete
                continue
        temp = temp_name()
        try:
            fd = os.open(temp, _CREATE, 0o666, dir_fd=dir_fd)
        except FileNotFoundError:  # the directory was just removed by a delete
            os.close(dir_fd)
            continue
        except BaseException:
            os.close(dir_fd)
            raise
        return PendingWrite(key, dir_fd, fd, temp)
    raise StorageError("the key's directory kept disappearing while writing", handle=key)


def write_all(pending: PendingWrite, chunks: Iterable[bytes | memoryview]) -> None:
    """Append ``chunks`` to the temporary file."""
    fd = pending.fd
    for chunk in chunks:
        view = memoryview(chunk)
        while view.nbytes:
            view = view[os.write(fd, view) :]


def _rename_into_place(layout: Layout, pending: PendingWrite, name: str, overwrite: bool) -> None:
    assert pending.temp is not None
    dir_fd = pending.dir_fd
    try:
        if overwrite:
            os.rename(pending.temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        else:
            try:
                rename_no_replace(dir_fd, pending.temp, name, pending.key)
            except AlreadyExistsError:
                if not _is_directory(dir_fd, name):
                    raise
                raise IsADirectoryError(name) from None  # no object: a directory, as below
    except IsADirectoryError:
        # An empty directory left behind gives way; one that holds objects does not.
        try:
            os.rmdir(name, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise layout.conflict(pending.key, pending.key) from None
            raise
        if overwrite:
            os.rename(pending.temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        else:
            rename_no_replace(dir_fd, pending.temp, name, pending.key)
    pending.temp = None


def _is_directory(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _current_metadata(layout: Layout, pending: PendingWrite, name: str) -> tuple[int, bytes] | None:
    """Return the inode and sidecar metadata of the object a write replaces, if it has any."""
    try:
        status = os.stat(name, dir_fd=pending.dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(status.st_mode):
        return None
    blob = read_sidecar(layout.path(pending.key), status.st_ino)
    return (status.st_ino, blob) if blob else None


def commit(
    layout: Layout,
    pending: PendingWrite,
    blob: bytes | None,
    *,
    fsync: bool,
    sidecar: bool,
    overwrite: bool = True,
    if_match: str | None = None,
) -> str:
    """Publish the temporary file under the key, with metadata ``blob``; always releases.

    The rename happens under the key's lock, after checking the write's condition.

    Returns:
        The etag of the published object.

    Raises:
        AlreadyExistsError: If other objects are stored under the key as a prefix, or an
            object exists and ``overwrite`` is False.
        PreconditionFailedError: If ``if_match`` is not the current object's etag.
    """
    _, name = split_key(pending.key)
    try:
        if blob is not None and not sidecar:
            os.setxattr(pending.fd, XATTR_NAME, blob)
        status = stamp_version(pending.fd)
        if fsync:
            os.fsync(pending.fd)
        os.close(pending.fd)
        pending.fd = -1
        # Every change of the key's entry holds its lock: the check and the rename are one
        # step for every other writer, and a sidecar's two renames never interleave.
        with directory_locked(pending.dir_fd):
            if if_match is not None:
                require_version(pending.dir_fd, name, pending.key, if_match)
            if sidecar:
                if not overwrite and _is_object(pending.dir_fd, name):
                    raise AlreadyExistsError("an object exists under this key", handle=pending.key)
                # The replaced object's metadata stays in the sidecar until the data rename,
                # so a crash between the two leaves the old object as it was.
                current = _current_metadata(layout, pending, name)
                if blob is not None or current is not None:
                    write_sidecar(pending.dir_fd, name, blob or b"", status.st_ino, fsync, current)
                else:
                    remove_sidecar(pending.dir_fd, name)
            _rename_into_place(layout, pending, name, overwrite)
        if fsync:
            os.fsync(pending.dir_fd)
        return etag_of(status)
    finally:
        abort(pending)


def _is_object(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def abort(pending: PendingWrite) -> None:
    """Release a pending write, removing its temporary file; safe to call again."""
    if pending.fd >= 0:
        close_quietly(pending.fd)
        pending.fd = -1
    if pending.temp is not None and pending.dir_fd >= 0:
        try:
            os.unlink(pending.temp, dir_fd=pending.dir_fd)
        except OSError:
            pass  # remove_temporaries() collects whatever could not be removed here
        pending.temp = None
    if pending.dir_fd >= 0:
        close_quietly(pending.dir_fd)
        pending.dir_fd = -1


def write_object(
    layout: Layout,
    key: str,
    chunks: Iterable[bytes | memoryview],
    blob: bytes | None,
    *,
    fsync: bool,
    sidecar: bool,
    overwrite: bool = True,
    if_match: str | None = None,
) -> str:
    """Write a whole object at once (the fast path for sources in memory); return its etag."""
    pending = open_temp(layout, key, fsync=fsync)
    try:
        write_all(pending, chunks)
        return commit(
            layout,
            pending,
            blob,
            fsync=fsync,
            sidecar=sidecar,
            overwrite=overwrite,
            if_match=if_match,
        )
    finally:
        abort(pending)


def _copy_bytes(source: int, target: int, size: int) -> None:
    remaining = size
    # In-kernel copies first: copy_file_range (reflinks on filesystems that have them), then
    # sendfile; a plain read/write loop only where neither works between these two files.
    for copier in ("copy_file_range", "sendfile"):
        function = getattr(os, copier, None)
        if function is None:
            continue
        try:
            while remaining > 0:
                if copier == "copy_file_range":
                    copied = function(source, target, min(remaining, _COPY_STEP))
                else:
                    copied = function(target, source, None, min(remaining, _COPY_STEP))
                if copied == 0:
                    return  # the source shrank under us
                remaining -= copied
            return
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            if remaining != size:
                raise
    while remaining > 0:
        data = os.read(source, min(remaining, 1 << 20))
        if not data:
            return
        write_all(PendingWrite("", -1, target, None), [data])
        remaining -= len(data)


def copy_object(
    layout: Layout,
    source_key: str,
    target_key: str,
    *,
    fsync: bool,
    sidecar: bool,
    overwrite: bool = True,
    if_match: str | None = None,
) -> str:
    """Copy an object with its metadata inside the filesystem, without reading it here.

    Returns:
        The etag of the copy.

    Raises:
        NotFoundError: If ``source_key`` is not an object.
        AlreadyExistsError: If ``overwrite`` is False and the target exists.
        PreconditionFailedError: If ``if_match`` is not the target's current etag.
    """
    source = layout.open_checked(source_key)
    try:
        info = os.fstat(source)
        if not stat.S_ISREG(info.st_mode):
            raise NotFoundError("no such object", handle=source_key)
        if sidecar:
            blob = read_sidecar(layout.path(source_key), info.st_ino)
        else:
            blob = read_xattr(source)
        pending = open_temp(layout, target_key, fsync=fsync)
        try:
            _copy_bytes(source, pending.fd, info.st_size)
            return commit(
                layout,
                pending,
                blob,
                fsync=fsync,
                sidecar=sidecar,
                overwrite=overwrite,
                if_match=if_match,
            )
        finally:
            abort(pending)
    finally:
        os.close(source)
