"""The mount table: checked mount points, merged listings, and what several stores share.

The parts of the mount middleware (`asyncstore.middleware.mount`) that need no store: which
mount points may be configured together, the streaming merge of listings, and the
capabilities every mounted store offers.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import AsyncIterator, Mapping
from typing import Any

from asyncstore.errors import ConfigError
from asyncstore.info import ObjectInfo
from asyncstore.keys import MAX_KEY_BYTES
from asyncstore.middleware._views import check_segments
from asyncstore.module import StorageModule

__all__ = [
    "check_mount_points",
    "close_all",
    "intersect_capabilities",
    "merge_listings",
    "mount_capabilities",
    "total_capacity",
]


async def merge_listings(
    listings: list[AsyncIterator[ObjectInfo]],
) -> AsyncIterator[ObjectInfo]:
    """Merge listings, each in handle order, into one in handle order, as they stream.

    Holds one object per listing (a heap of their heads), never a whole listing; the handles
    of different listings must differ. Every listing is closed when this one ends or is
    closed.
    """
    heap: list[tuple[str, int, ObjectInfo]] = []
    try:
        for index, listing in enumerate(listings):
            head = await anext(listing, None)
            if head is not None:
                heap.append((head.handle, index, head))
        heapq.heapify(heap)
        while heap:
            _, index, info = heap[0]
            yield info
            following = await anext(listings[index], None)
            if following is None:
                heapq.heappop(heap)
            else:
                heapq.heapreplace(heap, (following.handle, index, following))
    finally:
        for listing in listings:
            close = getattr(listing, "aclose", None)
            if close is not None:
                await close()


def check_mount_points(mounts: object) -> list[tuple[str, str]]:
    """Check the configured mount points; return ``(mount point, as configured)`` pairs.

    Raises:
        ConfigError: If ``mounts`` is not a non-empty table, a mount point is malformed, or
            two mount points are the same or one starts with another (the root aside).
    """
    if not isinstance(mounts, Mapping) or not mounts:
        raise ConfigError(
            "mounts must be a non-empty table of mount point to store, such as "
            '{ "media/" = "s3-media", "" = "default" }'
        )
    points: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for given in mounts:
        point = "" if given == "" else check_segments(given, "mount point")
        if point in seen:
            raise ConfigError(f"mount points {seen[point]!r} and {given!r} are the same")
        seen[point] = given
        points.append((point, given))
    nested = sorted(point for point in seen if point)
    for before, after in itertools.pairwise(nested):
        # Sorted, a mount point that starts with another comes right after it (or after
        # another that also starts with it).
        if after.startswith(before):
            raise ConfigError(
                f"mount points {before!r} and {after!r} overlap: every key under {after!r} "
                f"is also under {before!r}; mount one store at {before!r} only, or use "
                "distinct mount points"
            )
    return points


def intersect_capabilities(
    capabilities: list[dict[str, Any]], point_bytes: list[int]
) -> dict[str, Any]:
    """Return what every one of several stores offers.

    A flag is true where all say true (a store that does not name it says false); a limit
    (``max_...``) is the smallest one given (None where none is); a list keeps the entries
    all have; any other value is kept where all agree. ``max_key_bytes`` is each store's
    limit plus the length of its mount point (``point_bytes``), at most 1024.
    """
    effective: dict[str, Any] = {}
    for name in sorted({name for caps in capabilities for name in caps}):
        values = [caps.get(name) for caps in capabilities]
        given = [value for value in values if value is not None]
        if name.startswith("max_"):
            limits = [v for v in given if isinstance(v, int) and not isinstance(v, bool)]
            effective[name] = min(limits) if limits else None
        elif given and all(isinstance(value, bool) for value in given):
            effective[name] = all(value is True for value in values)
        elif given and all(isinstance(value, list) for value in given):
            first = values[0] or []
            effective[name] = [item for item in first if all(item in (v or []) for v in values)]
        elif all(value == values[0] for value in values):
            effective[name] = values[0]
    effective["max_key_bytes"] = min(
        min(MAX_KEY_BYTES, caps.get("max_key_bytes", MAX_KEY_BYTES) + extra)
        for caps, extra in zip(capabilities, point_bytes, strict=True)
    )
    return effective


def total_capacity(statistics: list[dict[str, Any]]) -> dict[str, int | None]:
    """Return the capacity of several stores together: each figure summed.

    A figure is None if any store does not know it.
    """
    capacity: dict[str, int | None] = {}
    for name in ("total", "used", "free"):
        values = [stats.get("capacity", {}).get(name) for stats in statistics]
        known = [value for value in values if isinstance(value, int)]
        capacity[name] = sum(known) if len(known) == len(values) else None
    return capacity


async def close_all(stores: list[StorageModule]) -> None:
    """Close every store, even after one fails; then raise the first failure."""
    first: Exception | None = None
    for store in stores:
        try:
            await store.aclose()
        except Exception as exc:  # noqa: PERF203 - every store must be closed
            first = first or exc
    if first is not None:
        raise first


_WRITES = ("writable", "assign", "delete")
"""Capabilities a mount has when any of its stores has them (missing counts as having)."""


def mount_capabilities(
    mounts: Mapping[str, StorageModule], *, new_handles: StorageModule
) -> dict[str, Any]:
    """Return the capabilities of a mount store: what every mounted store offers.

    See `intersect_capabilities`; besides, ``server_side_copy`` is only true with a single
    mount (copies across mounts stream), ``writable``, ``assign`` and ``delete`` are false
    only when no mount has them (the writes routed to a mount without them are refused
    there), and ``new_data`` is that of ``new_handles``, the store that makes new handles.
    """
    stores = list(mounts.values())
    each = [store.capabilities() for store in stores]
    effective = intersect_capabilities(each, [len(point.encode()) for point in mounts])
    for name in _WRITES:
        effective[name] = any(caps.get(name, True) is not False for caps in each)
    effective["new_data"] = new_handles.capabilities().get("new_data", True) is not False
    effective["server_side_copy"] = bool(effective.get("server_side_copy")) and len(stores) == 1
    effective["named_keys"] = True
    effective["reconfigure"] = False
    return effective
