"""Listing in key order, one directory at a time, and the cleanup of leftover files.

Keys sort as strings, which is not the order of a directory walk: ``a-c`` sorts before
``a/b`` because ``-`` comes before ``/``. So each directory's entries are sorted with a
directory ``d`` standing for all keys that start with ``d/``; since no key in it can sort
between two of its siblings, walking the sorted entries depth-first yields keys in order
while holding only the listings of the directories on the current path.
"""

from __future__ import annotations

import os
import stat
import time

from asyncstore.errors import PermissionDeniedError
from asyncstore.info import ObjectInfo
from asyncstore_fs._layout import MARKER, TEMP_TAG, Layout, is_object_name
from asyncstore_fs._metadata import sidecar_name
from asyncstore_fs._read import open_object

__all__ = ["describe_entries", "remove_leftovers", "scan_directory"]


def scan_directory(layout: Layout, dir_key: str, name_prefix: str) -> list[tuple[str, bool]]:
    """Return ``(name, is_directory)`` for the entries of a directory that may hold objects.

    Entries are in key order and limited to names starting with ``name_prefix``. The module's
    own files and names no key can have are left out; symlinks to directories are not
    walked (they could loop); a missing directory, or one reached through a symlink out of
    the root, has no entries.
    """
    try:
        fd = layout.open_dir(dir_key)
    except (FileNotFoundError, NotADirectoryError, PermissionDeniedError):
        return []  # nothing there, or a symlink out of the root: no objects of ours
    try:
        entries: list[tuple[str, str, bool]] = []
        with os.scandir(fd) as scan:
            for entry in scan:
                name = entry.name
                if not name.startswith(name_prefix) or not is_object_name(name):
                    continue
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                    if not is_dir and entry.is_symlink() and not entry.is_file():
                        continue  # a symlink to a directory, or dangling
                except OSError:
                    continue  # vanished while we looked
                entries.append((name + "/" if is_dir else name, name, is_dir))
    finally:
        os.close(fd)
    entries.sort()
    return [(name, is_dir) for _, name, is_dir in entries]


def describe_entries(
    layout: Layout, dir_key: str, names: list[str], *, sidecar: bool
) -> list[ObjectInfo]:
    """Describe the objects ``names`` of a directory, skipping any that are gone.

    A symlink that leads out of the root is skipped, as every other access refuses it.
    """
    infos = []
    for name in names:
        key = f"{dir_key}/{name}" if dir_key else name
        try:
            infos.append(open_object(layout, key, sidecar=sidecar).info)
        except (FileNotFoundError, NotADirectoryError, PermissionDeniedError):
            continue
    return infos


def remove_leftovers(layout: Layout, older_than: float) -> int:
    """Remove temporary files and orphaned sidecars older than ``older_than`` seconds.

    Returns:
        How many files were removed.
    """
    cutoff = time.time() - older_than
    removed = 0
    for directory, _, files in os.walk(layout.root):
        for name in files:
            if MARKER not in name:
                continue
            path = os.path.join(directory, name)
            try:
                status = os.lstat(path)
                if not stat.S_ISREG(status.st_mode) or status.st_mtime > cutoff:
                    continue
                if name.startswith(TEMP_TAG):
                    os.unlink(path)
                    removed += 1
                elif name.endswith(sidecar_name("")):
                    owner = os.path.join(directory, name[: -len(sidecar_name(""))])
                    if not os.path.lexists(owner):
                        os.unlink(path)
                        removed += 1
            except FileNotFoundError:
                continue
    return removed
