"""What the view middleware share: objects renamed between a view and the store beneath.

A view (`prefix`, `mount`) shows a store's objects under other handles. These helpers rename
what the store beneath returns (descriptions, streams, errors) without copying any bytes.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import NoReturn

from asyncstore.errors import ConfigError, StorageError
from asyncstore.info import ObjectInfo
from asyncstore.keys import validate_key
from asyncstore.streams import ReadStream

__all__ = ["check_segments", "closing", "renamed", "renamed_stream", "reraise_renamed"]

_new = object.__new__
_set = object.__setattr__


def renamed(info: ObjectInfo, handle: str) -> ObjectInfo:
    """Return ``info`` with another handle.

    A view renames every object it returns, so this skips what building a new `ObjectInfo`
    re-checks (its fields come from one already built): a third of the time.
    """
    new = _new(ObjectInfo)
    fields = info.__dict__.copy()
    fields["handle"] = handle
    _set(new, "__dict__", fields)  # frozen: its own __setattr__ refuses
    return new


def renamed_stream(stream: ReadStream, handle: str) -> ReadStream:
    """Return the store's own stream, its `ReadStream.info` renamed to ``handle``.

    The stream is handed over as it is (no stream wraps it, so reads cost nothing more, and
    the zero-copy paths of the store's stream stay open to the layers above).
    """
    info = _new(ObjectInfo)  # `renamed`, inlined: this is on every read
    fields = stream._info.__dict__.copy()
    fields["handle"] = handle
    _set(info, "__dict__", fields)
    stream._info = info
    return stream


@asynccontextmanager
async def closing(
    listing: AsyncIterator[ObjectInfo],
) -> AsyncIterator[AsyncIterator[ObjectInfo]]:
    """Read a listing, and close it however the reading ends.

    Leaving an ``async for`` early does not close an async generator (it is only closed when
    collected), which would leave the listings of the stores beneath open until then.
    """
    try:
        yield listing
    finally:
        close = getattr(listing, "aclose", None)
        if close is not None:
            await close()


def reraise_renamed(
    error: StorageError, *, store: str, rename: Callable[[str], str | None]
) -> NoReturn:
    """Raise an error of the store beneath as the view's: its store and handle renamed.

    The original stays chained (``__cause__``), so the store beneath and its key remain in
    the traceback.
    """
    try:
        outer = copy.copy(error)  # same class and message (`StorageError.__reduce__`)
    except Exception:  # an error class that cannot be rebuilt: raise it unchanged
        raise error from None
    outer.store = store
    outer.handle = rename(error.handle) if error.handle is not None else None
    raise outer from error


def check_segments(path: str, what: str) -> str:
    """Check a configured prefix or mount point: whole key segments ending in ``/``.

    ``"media"`` and ``"media/"`` both give ``"media/"``.

    Raises:
        ConfigError: If it is not made of valid key segments.
    """
    if not isinstance(path, str):
        raise ConfigError(f"{what} must be a str, not {type(path).__name__}")
    try:
        return validate_key(path.removesuffix("/")) + "/"
    except StorageError as exc:
        raise ConfigError(f"{what} {path!r} is not made of valid key segments: {exc}") from None
