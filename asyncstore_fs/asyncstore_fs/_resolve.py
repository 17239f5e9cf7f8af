"""Opening paths beneath a directory with the kernel's guarantee: Linux ``openat2``.

``openat2(RESOLVE_BENEATH)`` makes the kernel refuse any path that would leave the directory,
through ``..`` or through a symlink, and does so in the same step as the open, so there is no
window between a check and the use. Python has no binding for it, so it is called through
``ctypes``; where it is missing (other systems, kernels before 5.6, or a seccomp filter) the
layout falls back to checking the opened file's real path.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from collections.abc import Callable

__all__ = ["beneath_opener"]

_SYS_OPENAT2 = 437  # the same number on every architecture (new system call numbering)
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_BENEATH = 0x08


class _OpenHow(ctypes.Structure):
    _fields_ = (
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    )


def beneath_opener(dir_fd: int) -> Callable[[bytes, int], int] | None:
    """Return ``open(path, flags) -> fd`` for paths beneath ``dir_fd``, or None if unavailable.

    The function raises `OSError` as `os.open` does; ``EXDEV`` means the path would leave the
    directory.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        syscall = libc.syscall
    except (OSError, AttributeError):
        return None
    syscall.restype = ctypes.c_long
    size = ctypes.c_size_t(ctypes.sizeof(_OpenHow))
    number = ctypes.c_long(_SYS_OPENAT2)
    directory = ctypes.c_long(dir_fd)

    def open_beneath(path: bytes, flags: int) -> int:
        how = _OpenHow(flags, 0, _RESOLVE_BENEATH | _RESOLVE_NO_MAGICLINKS)
        fd = int(syscall(number, directory, ctypes.c_char_p(path), ctypes.byref(how), size))
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), os.fsdecode(path))
        return fd

    try:
        os.close(open_beneath(b".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
    except OSError as exc:
        if exc.errno in (errno.ENOSYS, errno.EPERM, errno.EINVAL):
            return None  # not in this kernel, or filtered out
        raise
    return open_beneath
