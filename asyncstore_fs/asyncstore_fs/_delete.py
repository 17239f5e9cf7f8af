"""Deleting objects, and removing the directories they leave empty."""

from __future__ import annotations

import errno
import os
import stat

from asyncstore.errors import PreconditionFailedError
from asyncstore_fs._conditions import directory_locked, require_version
from asyncstore_fs._layout import Layout, split_key
from asyncstore_fs._metadata import remove_sidecar

__all__ = ["delete_object", "remove_empty_parents"]


def delete_object(
    layout: Layout, key: str, *, fsync: bool, sidecar: bool, if_match: str | None = None
) -> None:
    """Delete the object under ``key``; a missing object, or a directory, is left alone.

    Directories left empty are removed up to the root, so that the tree stays as small as
    the set of keys, and a key can later be stored where only a prefix used to be.

    Raises:
        PreconditionFailedError: If ``if_match`` is given and is not the object's etag (or
            there is no object).
    """
    parent, name = split_key(key)
    try:
        dir_fd = layout.open_dir(parent)
    except (FileNotFoundError, NotADirectoryError):
        if if_match is not None:
            raise PreconditionFailedError(
                "no object exists for if_match to match", handle=key
            ) from None
        return
    try:
        # The object and its sidecar go together, and a conditional write's check and
        # rename must not be split by the unlink.
        with directory_locked(dir_fd):
            if if_match is not None:
                require_version(dir_fd, name, key, if_match)
            if not _unlink(dir_fd, name):
                return
            if sidecar:
                remove_sidecar(dir_fd, name)
        if fsync:
            os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    remove_empty_parents(layout, parent)


def _unlink(dir_fd: int, name: str) -> bool:
    """Remove the object file; return False if there was none."""
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    except OSError as exc:
        # unlink() of a directory fails with EISDIR on Linux and EPERM elsewhere: a
        # directory is a prefix of other keys, not an object, so there is nothing to do.
        if exc.errno in (errno.EISDIR, errno.EPERM) and _is_directory(dir_fd, name):
            return False
        raise
    return True


def _is_directory(dir_fd: int, name: str) -> bool:
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except OSError:
        return False
    return stat.S_ISDIR(mode)


def remove_empty_parents(layout: Layout, dir_key: str) -> None:
    """Remove the directory ``dir_key`` and its parents, up to the first that is not empty."""
    while dir_key:
        up, name = split_key(dir_key)
        try:
            fd = layout.open_dir(up) if up else layout.root_fd
        except OSError:
            return
        try:
            # Fails (and stops the climb) as soon as a directory is not empty; a concurrent
            # write that loses its directory here creates it again.
            os.rmdir(name, dir_fd=fd)
        except OSError:
            return
        finally:
            if up:
                os.close(fd)
        dir_key = up
