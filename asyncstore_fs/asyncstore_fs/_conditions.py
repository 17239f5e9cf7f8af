"""Conditional writes: a lock shared by every process, and a rename that never replaces.

Every change to a key's directory entry (the rename that publishes a write, the unlink of a
delete) happens while holding an exclusive ``flock`` on the key's directory, so a write whose
condition names the current version (``if_match``) checks and replaces in one step that no
other writer can split. Each operation opens the directory itself, so threads of one process
exclude each other as other processes do; the lock is held only around the check and the
rename. The kernel releases it when the descriptor is closed, which happens when the process
exits for whatever reason (``kill -9`` included): a crash never leaves a key locked, and no
lock file is left in the tree.

Create-only writes publish with ``renameat2(RENAME_NOREPLACE)``, which the kernel makes fail
when the name exists; where it is missing, with a hard link (``link`` fails on an existing
name too) and the removal of the temporary name.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from asyncstore.errors import AlreadyExistsError, PreconditionFailedError

__all__ = [
    "directory_locked",
    "etag_of",
    "rename_no_replace",
    "require_version",
    "stamp_version",
]

_RENAME_NOREPLACE = 1
_NO_RENAMEAT2 = {errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP}


def etag_of(status: os.stat_result) -> str:
    """Return the etag of the object whose status is ``status`` (as `stat` reports it)."""
    # Every write renames a new inode into place, and in-place edits by other tools change
    # the modification time: together they identify one version's content.
    return f"{status.st_ino:x}-{status.st_mtime_ns:x}-{status.st_size:x}"


_last_stamp = 0
_stamp_guard = threading.Lock()


def stamp_version(fd: int) -> os.stat_result:
    """Give the file a modification time no other write of this process has; return its status.

    File times come from the kernel's coarse clock (a tick of several milliseconds), and a
    freed inode number is soon used again: two versions of one size written in one tick
    could otherwise share an etag, and a compare-and-swap could take one for the other.
    """
    global _last_stamp
    with _stamp_guard:
        stamp = _last_stamp = max(time.time_ns(), _last_stamp + 1)
    os.utime(fd, ns=(stamp, stamp))
    return os.fstat(fd)


@contextmanager
def directory_locked(dir_fd: int) -> Iterator[None]:
    """Hold the exclusive lock of the directory open as ``dir_fd`` (blocking until free).

    ``dir_fd`` must have been opened by the caller for this operation alone: the lock belongs
    to that open descriptor.
    """
    fcntl.flock(dir_fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(dir_fd, fcntl.LOCK_UN)


def require_version(dir_fd: int, name: str, key: str, if_match: str) -> None:
    """Raise unless the object named ``name`` in ``dir_fd`` has the etag ``if_match``.

    Call it while holding the key's lock.

    Raises:
        PreconditionFailedError: If the object is another version, or absent.
    """
    try:
        status = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        raise PreconditionFailedError(
            "no object exists for if_match to match", handle=key
        ) from None
    if not stat.S_ISREG(status.st_mode) or etag_of(status) != if_match:
        raise PreconditionFailedError("the object is not the version if_match names", handle=key)


def _load_renameat2() -> Callable[..., int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None
    function.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    function.restype = ctypes.c_int
    return function


_renameat2 = _load_renameat2()


def rename_no_replace(dir_fd: int, source: str, target: str, key: str) -> None:
    """Rename ``source`` to ``target`` in ``dir_fd`` unless ``target`` exists.

    Raises:
        AlreadyExistsError: If ``target`` exists (nothing is changed).
    """
    global _renameat2
    if _renameat2 is not None:
        if _renameat2(dir_fd, source.encode(), dir_fd, target.encode(), _RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code == errno.EEXIST:
            raise _exists(key)
        if code not in _NO_RENAMEAT2:
            raise OSError(code, os.strerror(code), target)
        if code == errno.ENOSYS:
            _renameat2 = None  # the kernel has none: never ask again
    try:
        os.link(source, target, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
    except FileExistsError:
        raise _exists(key) from None
    os.unlink(source, dir_fd=dir_fd)


def _exists(key: str) -> AlreadyExistsError:
    return AlreadyExistsError("an object exists under this key", handle=key)
