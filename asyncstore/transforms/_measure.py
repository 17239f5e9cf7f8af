"""Learning what a transform's output looks like without keeping it: its metadata and size.

A transformed read must state its size and metadata before its first byte; a store
describes its objects (`stat`, `list`) as reads would. `measure` runs the transform over an
input and drops the output: just until the metadata is final for a transform that keeps
sizes, to the end otherwise. `Measurements` remembers results per object version.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Mapping
from dataclasses import dataclass

import anyio

from asyncstore.errors import TransformError
from asyncstore.transforms._contract import Transform
from asyncstore.transforms._execute import Isolation, execute
from asyncstore.transforms._outputs import CountingOutput
from asyncstore.transforms._streams import InputStream

__all__ = ["Measured", "Measurements", "measure"]


@dataclass(frozen=True)
class Measured:
    """What a transform's output is, seen from outside."""

    size: int | None
    """Its length (None when only the metadata was learnt)."""
    content_type: str | None
    """Its content type."""
    metadata: Mapping[str, str]
    """Its metadata."""


class _EnoughError(Exception):
    """Stops a run once the output's metadata is final."""


class _MetadataProbe(CountingOutput):
    async def _start(self) -> None:
        raise _EnoughError


async def measure(
    transform: Transform,
    source: InputStream,
    params: Mapping[str, str],
    isolation: Isolation,
    *,
    size: bool,
) -> Measured:
    """Run ``transform`` on ``source`` (then closed), dropping its output; return what it was.

    Args:
        transform: The transform, taking one input and writing one output.
        source: The input.
        params: Its checked parameters.
        isolation: Where it runs.
        size: Whether to run to the end to count the bytes; if False, the run stops as soon
            as the metadata is final.

    Raises:
        TransformError: If the transform fails.
        Exception: The input's own error.
    """
    probe = CountingOutput() if size else _MetadataProbe()
    probe.transform = transform.name
    try:
        await execute(transform, [source], [probe], params, isolation=isolation)
    except TransformError as exc:
        if not isinstance(exc.__cause__, _EnoughError):
            raise
    finally:
        with anyio.CancelScope(shield=True):
            await source.aclose()
    return Measured(probe.bytes_written if size else None, probe.content_type, probe.metadata)


class Measurements:
    """The last measurements, by key (an object's handle and etag), oldest forgotten first."""

    def __init__(self, entries: int = 1024) -> None:
        self._entries = entries
        self._cache: OrderedDict[Hashable, Measured] = OrderedDict()

    def get(self, key: Hashable) -> Measured | None:
        """Return the measurement of ``key``, if remembered."""
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
        return found

    def put(self, key: Hashable, measured: Measured) -> None:
        """Remember a measurement."""
        self._cache[key] = measured
        self._cache.move_to_end(key)
        if len(self._cache) > self._entries:
            self._cache.popitem(last=False)
