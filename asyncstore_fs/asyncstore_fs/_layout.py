"""Where keys live under the root, and how paths are opened without leaving it.

The object under key ``a/b/c.txt`` is the plain file ``<root>/a/b/c.txt``. Names that hold the
`MARKER` character (a control character, which no key may contain) are the module's own:
temporary files of writes in progress and metadata sidecars. They can never collide with an
object and `list` never shows them.

Every file or directory is opened so that it cannot be outside the root: with ``openat2``'s
``RESOLVE_BENEATH`` where the kernel has it, else by checking the path the kernel actually
opened. Either way a symlink that leads out of the root is refused, and there is no window
between the check and the use.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import sys
import weakref

from asyncstore.errors import AlreadyExistsError, PermissionDeniedError
from asyncstore_fs._resolve import beneath_opener

__all__ = ["MARKER", "TEMP_TAG", "Layout", "close_quietly", "split_key"]

MARKER = "\x7f"
"""Part of every name the module creates for itself; no key can contain it."""

TEMP_TAG = f".asyncstore-tmp{MARKER}"
"""The start of every temporary file's name."""

_OPEN_ROOT = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
# O_NONBLOCK keeps an open from hanging on a FIFO someone placed under the root.
_OPEN_FILE = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
_PROC_FD = "/proc/self/fd"
_HAVE_PROC = sys.platform.startswith("linux") and os.path.isdir(_PROC_FD)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def split_key(key: str) -> tuple[str, str]:
    """Split a key into its directory part (maybe empty) and its last segment."""
    parent, _, name = key.rpartition("/")
    return parent, name


def close_quietly(fd: int) -> None:
    """Close a file descriptor, ignoring errors (used on cleanup paths only)."""
    try:
        os.close(fd)
    except OSError:
        pass


def is_object_name(name: str) -> bool:
    """Return whether a directory entry's name can be an object's last key segment."""
    if _CONTROL.search(name):  # our own files (MARKER), or names no key can have
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes in the name
        return False
    return True


def temp_name() -> str:
    """Return a fresh temporary file name."""
    return TEMP_TAG + secrets.token_hex(8)


class Layout:
    """The mapping from keys to paths under one root directory, with escape checks.

    Args:
        root: The root directory, already resolved (no symlinks) and existing.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self._inside = root if root.endswith("/") else root + "/"
        self._root_fd = os.open(root, _OPEN_ROOT)
        weakref.finalize(self, close_quietly, self._root_fd)
        self._open_beneath = beneath_opener(self._root_fd)

    @property
    def root_fd(self) -> int:
        """The root directory, open for use as ``dir_fd`` (it stays open with the layout)."""
        return self._root_fd

    def path(self, key: str) -> str:
        """Return the path of a key, or of the root for the empty key."""
        return self._inside + key if key else self.root

    def _real_path(self, fd: int, path: str) -> str:
        if _HAVE_PROC:
            return os.readlink(f"{_PROC_FD}/{fd}")
        if sys.platform == "darwin":  # pragma: no cover - not exercised on Linux CI
            import fcntl

            buffer = fcntl.fcntl(fd, fcntl.F_GETPATH, b"\0" * 1024)  # type: ignore[attr-defined]
            return os.fsdecode(buffer.rstrip(b"\0"))
        return os.path.realpath(path)  # pragma: no cover - racy fallback

    def check_inside(self, fd: int, path: str, key: str) -> None:
        """Raise unless the open ``fd`` (opened as ``path``) is the root or inside it.

        Raises:
            PermissionDeniedError: If a symlink led outside the root (``fd`` is left open).
        """
        real = self._real_path(fd, path)
        if real != self.root and not real.startswith(self._inside):
            raise PermissionDeniedError(
                "refusing to follow a symlink that leads outside the store's root",
                handle=key or None,
            )

    def open_checked(self, key: str, flags: int = _OPEN_FILE) -> int:
        """Open the path of ``key`` (or the root), refusing to end up outside the root.

        Raises:
            PermissionDeniedError: If a symlink leads outside the root.
            OSError: As `os.open` does.
        """
        if self._open_beneath is not None:
            try:
                return self._open_beneath(key.encode() if key else b".", flags)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                # The kernel also refuses absolute symlinks that lead back inside the root:
                # those are allowed, after the check below.
        path = self.path(key)
        fd = os.open(path, flags)
        try:
            self.check_inside(fd, path, key)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def open_dir(self, dir_key: str) -> int:
        """Open an existing directory under the root (``""`` is the root itself)."""
        return self.open_checked(dir_key, _OPEN_DIR)

    def make_dirs(self, dir_key: str, key: str, *, fsync: bool = False) -> int:
        """Create the directories of ``dir_key`` one by one and return the last one, open.

        Each directory is made inside one already opened and checked, and then opened and
        checked itself, so nothing is ever created outside the root.

        Raises:
            AlreadyExistsError: If one of the directories is an object (a file).
            PermissionDeniedError: If a symlink led outside the root.
        """
        fd = self.open_dir("")
        done = ""
        try:
            for segment in dir_key.split("/"):
                done = f"{done}/{segment}" if done else segment
                try:
                    os.mkdir(segment, 0o777, dir_fd=fd)
                except FileExistsError:
                    pass
                else:
                    if fsync:  # the new entry must survive a crash as the object will
                        os.fsync(fd)
                try:
                    child = self.open_checked(done, _OPEN_DIR)
                except NotADirectoryError:
                    raise self.conflict(key, done) from None
                os.close(fd)
                fd = child
        except BaseException:
            close_quietly(fd)
            raise
        return fd

    def conflict(self, key: str, other: str) -> AlreadyExistsError:
        """Return the error for a key that clashes with a file/directory at ``other``."""
        if other == key:
            return AlreadyExistsError(
                "cannot store this key: other objects are stored under it as a prefix "
                f"({key + '/'!r}), and a filesystem cannot hold a file and a directory "
                "of the same name",
                handle=key,
            )
        return AlreadyExistsError(
            f"cannot store this key: {other!r} is an object, and a filesystem cannot hold a "
            "file and a directory of the same name",
            handle=key,
        )
