"""Paths of the ``asyncstore://`` filesystem: URLs, keys, and directories derived from keys.

A store holds flat keys; the filesystem shows the ``/``-separated segments of those keys as
directories, the way s3fs shows a bucket. ``asyncstore://STORE/a/b.csv`` is the key ``a/b.csv``
of the configured store ``STORE``; ``asyncstore:///a/b.csv`` (no store) is that key of the
store the filesystem was created with.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from asyncstore.info import ObjectInfo

__all__ = [
    "PROTOCOL",
    "directory_entry",
    "file_entry",
    "split_url",
    "strip_path",
    "tree_entries",
]

PROTOCOL = "asyncstore"
_URL_PREFIX = f"{PROTOCOL}://"


def split_url(path: str) -> tuple[str | None, str]:
    """Split ``asyncstore://STORE/key`` into the store name (None if absent) and the rest.

    A path without the protocol has no store name.
    """
    if not path.startswith(_URL_PREFIX):
        return None, path
    rest = path[len(_URL_PREFIX) :]
    store, _, key = rest.partition("/")
    return (store or None), key


def strip_path(path: str) -> str:
    """Return the key-like path of a path or URL: no protocol, store or surrounding slashes."""
    _, rest = split_url(path)
    # fsspec callers may add a query or fragment to a URL; asyncstore keys cannot hold them
    # unquoted, so they are left as part of the key for the store's validator to judge.
    return rest.strip("/")


def file_entry(info: ObjectInfo, name: str) -> dict[str, Any]:
    """Return fsspec's description of the object ``info`` shown as the file ``name``."""
    entry: dict[str, Any] = {"name": name, "size": info.size, "type": "file"}
    if info.modified is not None:
        entry["mtime"] = info.modified.timestamp()
        entry["LastModified"] = info.modified
    if info.etag is not None:
        entry["ETag"] = info.etag
    if info.content_type is not None:
        entry["ContentType"] = info.content_type
    if info.metadata:
        entry["metadata"] = dict(info.metadata)
    return entry


def directory_entry(name: str) -> dict[str, Any]:
    """Return fsspec's description of the directory ``name`` (derived, so it has no size)."""
    return {"name": name, "size": 0, "type": "directory"}


def modified_of(entry: dict[str, Any]) -> datetime | None:
    """Return the modification time of a file entry, if the store reported one."""
    value = entry.get("LastModified")
    return value if isinstance(value, datetime) else None


def tree_entries(
    infos: Iterable[ObjectInfo],
    base: str,
    *,
    maxdepth: int | None = None,
    directories: bool = True,
) -> dict[str, dict[str, Any]]:
    """Describe the files and derived directories below ``base`` from a listing of its keys.

    Args:
        infos: The objects whose keys start with ``base + "/"`` (or every object, for the root
            ``""``), in any order.
        base: The directory, as a key prefix without the trailing slash; ``""`` for the root.
        maxdepth: Only entries at most this many levels below ``base`` (1: its children).
        directories: Whether to include the directories the keys imply.

    Returns:
        Entries by name, sorted by name.
    """
    lead = f"{base}/" if base else ""
    found: dict[str, dict[str, Any]] = {}
    for info in infos:
        rest = info.handle[len(lead) :]
        parts = rest.split("/")
        depth = len(parts)
        if maxdepth is None or depth <= maxdepth:
            found[info.handle] = file_entry(info, info.handle)
        if directories:
            limit = depth - 1 if maxdepth is None else min(depth - 1, maxdepth)
            for level in range(1, limit + 1):
                name = lead + "/".join(parts[:level])
                if name not in found:
                    found[name] = directory_entry(name)
    return dict(sorted(found.items()))
