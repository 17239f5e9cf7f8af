"""Typed descriptions of stored objects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

__all__ = ["Handle", "ObjectInfo"]

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class ObjectInfo:
    """What a module knows about one complete object."""

    handle: str
    """The handle (for keyed modules, the key) of the object."""
    size: int
    """The size of the object in bytes."""
    modified: datetime | None = None
    """When the object was last written, as an aware UTC datetime, if the backend knows."""
    etag: str | None = None
    """An opaque tag or checksum that changes whenever the content changes."""
    content_type: str | None = None
    """The MIME type given when the object was stored."""
    metadata: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    """User metadata given when the object was stored."""

    def __post_init__(self) -> None:
        # Callers get a read-only copy: nobody can change stored metadata through an info.
        if not isinstance(self.metadata, MappingProxyType):
            object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-serialisable dict of the fields."""
        return {
            "handle": self.handle,
            "size": self.size,
            "modified": self.modified.isoformat() if self.modified else None,
            "etag": self.etag,
            "content_type": self.content_type,
            "metadata": dict(self.metadata),
        }


class Handle(str):
    """The handle `put` returns: the handle itself (a `str`), with the new object's etag.

    It compares, hashes and serialises as the plain handle; ``etag`` is the stored version's
    tag (the one `stat` reports), or None when the module did not say. Pass it as ``if_match``
    to replace or delete exactly this version.
    """

    etag: str | None
    """The etag of the object the write stored, or None if the module did not report it."""

    def __new__(cls, handle: str, etag: str | None = None) -> Handle:  # noqa: D102
        self = super().__new__(cls, handle)
        self.etag = etag
        return self

    def __reduce__(self) -> tuple[object, ...]:
        return (Handle, (str(self), self.etag))
