"""Where user metadata and content types are kept: an extended attribute, or a sidecar file.

With extended attributes (the default where the filesystem supports ``user.*`` attributes) the
metadata is set on the temporary file before it is renamed into place, so it changes together
with the bytes. Otherwise it goes to a sidecar file next to the object, named with the layout's
`MARKER` so that `list` never shows it; the sidecar records the inode of the object it
describes, so a sidecar that does not match the current file is ignored. While a write
replaces an object, its sidecar describes both files (the new one and the one it replaces),
so a crash between the sidecar's rename and the object's leaves the old object whole.
Sidecar writes to one key are serialised within a process; writers in several processes
sharing a root without extended attributes can leave an object whose metadata reads as empty.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Mapping
from types import MappingProxyType

from asyncstore_fs._layout import MARKER, temp_name

__all__ = [
    "XATTR_NAME",
    "decode",
    "encode",
    "read_sidecar",
    "read_xattr",
    "remove_sidecar",
    "sidecar_name",
    "supports_xattrs",
    "write_sidecar",
]

XATTR_NAME = "user.asyncstore"
"""The extended attribute that holds an object's metadata and content type, as JSON."""

_SIDECAR_SUFFIX = f"{MARKER}meta"
_EMPTY: Mapping[str, str] = MappingProxyType({})
_NO_ATTRIBUTE = {errno.ENODATA, getattr(errno, "ENOATTR", errno.ENODATA), errno.ENOTSUP}
_OPEN_SIDECAR = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)


def encode(metadata: Mapping[str, str], content_type: str | None) -> bytes | None:
    """Return the stored form of metadata and content type, or None when both are empty."""
    if not metadata and content_type is None:
        return None
    record: dict[str, object] = {"metadata": dict(metadata)}
    if content_type is not None:
        record["content_type"] = content_type
    return json.dumps(record, separators=(",", ":")).encode()


def decode(blob: bytes | None) -> tuple[Mapping[str, str], str | None]:
    """Return (metadata, content type) from the stored form; damaged records read as empty."""
    if not blob:
        return _EMPTY, None
    try:
        record = json.loads(blob)
        metadata = {str(k): str(v) for k, v in record.get("metadata", {}).items()}
        content_type = record.get("content_type")
    except (ValueError, AttributeError, TypeError):
        return _EMPTY, None
    return MappingProxyType(metadata), content_type if isinstance(content_type, str) else None


def supports_xattrs(directory: str) -> bool:
    """Return whether ``user.*`` extended attributes can be set on files in ``directory``."""
    if not hasattr(os, "setxattr"):
        return False
    probe = os.path.join(directory, temp_name())
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError:
        return False
    try:
        os.setxattr(fd, XATTR_NAME, b"{}")
    except OSError:
        return False
    else:
        return True
    finally:
        os.close(fd)
        os.unlink(probe)


def read_xattr(fd: int) -> bytes | None:
    """Return the metadata attribute of an open file, or None if it has none."""
    try:
        # Listing first is cheaper than a failing getxattr for the common file without one.
        if XATTR_NAME not in os.listxattr(fd):
            return None
        return os.getxattr(fd, XATTR_NAME)
    except OSError as exc:
        if exc.errno in _NO_ATTRIBUTE:
            return None
        raise


def sidecar_name(name: str) -> str:
    """Return the sidecar file name for an object's last key segment."""
    return name + _SIDECAR_SUFFIX


def write_sidecar(
    dir_fd: int,
    name: str,
    blob: bytes,
    inode: int,
    fsync: bool,
    previous: tuple[int, bytes] | None = None,
) -> None:
    """Atomically write the sidecar of ``name`` (in ``dir_fd``) for the file ``inode``.

    ``previous`` is the inode and metadata of the file that ``inode`` is about to replace;
    they stay readable until the replacement is renamed into place.
    """
    entry: dict[str, object] = {"inode": inode, "record": blob.decode()}
    if previous is not None:
        entry["previous"] = {"inode": previous[0], "record": previous[1].decode()}
    record = json.dumps(entry).encode()
    temp = temp_name()
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666, dir_fd=dir_fd)
    try:
        os.write(fd, record)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.rename(temp, sidecar_name(name), src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        os.unlink(temp, dir_fd=dir_fd)
        raise


def read_sidecar(path: str, inode: int) -> bytes | None:
    """Return the metadata recorded beside the object at ``path`` if it describes ``inode``."""
    try:
        fd = os.open(path + _SIDECAR_SUFFIX, _OPEN_SIDECAR)
    except FileNotFoundError:
        return None
    try:
        data = os.read(fd, 1 << 16)
    finally:
        os.close(fd)
    try:
        record = json.loads(data)
        if record.get("inode") != inode:
            # The file that a write in progress (or killed) was replacing, or nothing of ours.
            record = record.get("previous") or {}
            if record.get("inode") != inode:
                return None  # left from an earlier version of the object
        return str(record["record"]).encode()
    except (ValueError, KeyError, AttributeError, TypeError):
        return None


def remove_sidecar(dir_fd: int, name: str) -> None:
    """Remove the sidecar of ``name`` in ``dir_fd`` if there is one."""
    try:
        os.unlink(sidecar_name(name), dir_fd=dir_fd)
    except FileNotFoundError:
        pass
