"""What a key-value store keeps next to each value, and the stream that reads values in ranges."""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from asyncstore.errors import IntegrityError, NotFoundError, PreconditionFailedError
from asyncstore.info import ObjectInfo
from asyncstore.streams import DEFAULT_CHUNK_SIZE, ReadStream

__all__ = ["Expected", "KeyValueReadStream", "decode_record", "encode_record", "new_etag"]

READ_AHEAD = DEFAULT_CHUNK_SIZE
"""How many bytes opening a stream fetches with the record: an object up to this size is read
in the same call that opens it, so a reader always gets the whole of one version."""


@dataclass(frozen=True)
class Expected:
    """The version a conditional `_set` or `_delete` requires under its key.

    The store must compare, in the same atomic step as the write, the record it holds under
    the key with `record`, and write nothing (returning False) if they differ.
    """

    record: str | None
    """The record the key must hold now, exactly as the store holds it; None: no object."""


def new_etag() -> str:
    """Return a fresh etag: a random token, new for every version written."""
    return os.urandom(16).hex()


def encode_record(
    size: int, content_type: str | None, metadata: Mapping[str, str], *, etag: str
) -> str:
    """Return the record of a new version: its size, etag, the time, type and metadata."""
    return json.dumps(
        {
            "size": size,
            "etag": etag,
            "modified": datetime.now(timezone.utc).isoformat(),
            "content_type": content_type,
            "metadata": dict(metadata),
        },
        separators=(",", ":"),
    )


def decode_record(key: str, record: str, *, store: str) -> ObjectInfo:
    """Return the `ObjectInfo` a record describes.

    Raises:
        IntegrityError: If ``record`` is not a record `encode_record` wrote.
    """
    try:
        fields: dict[str, Any] = json.loads(record)
        return ObjectInfo(
            handle=key,
            size=fields["size"],
            modified=datetime.fromisoformat(fields["modified"]),
            etag=fields["etag"],
            content_type=fields["content_type"],
            metadata=fields["metadata"],
        )
    except (TypeError, ValueError, KeyError) as exc:
        raise IntegrityError(
            f"the stored record is not one this module wrote: {record!r:.80}",
            store=store,
            handle=key,
        ) from exc


Getter = Callable[[str, int, int], Awaitable["tuple[str, bytes] | None"]]


class KeyValueReadStream(ReadStream):
    """A `ReadStream` over one version of a value, read in ranges through the store's `_get`.

    Every range it fetches must come with the record it was opened with: a version replaced
    since raises `PreconditionFailedError`, a deleted one `NotFoundError`, so a reader never
    mixes the bytes of two versions.
    """

    def __init__(
        self,
        get: Getter,
        record: str,
        info: ObjectInfo,
        first: bytes,
        *,
        start: int = 0,
        end: int | None = None,
        store: str,
    ) -> None:
        super().__init__(info, start=start, end=end)
        self._get = get
        self._record = record
        self._store = store
        # The bytes fetched when the stream was opened, at absolute offset ``_offset``.
        self._first = memoryview(first).toreadonly()

    def _view_at(self, offset: int, count: int) -> memoryview | None:
        relative = offset - self._offset
        if 0 <= relative and relative + count <= len(self._first):
            return self._first[relative : relative + count]
        return None

    async def _read_at(self, offset: int, max_bytes: int) -> bytes:
        relative = offset - self._offset
        if 0 <= relative < len(self._first):
            return bytes(self._first[relative : relative + max_bytes])
        if relative >= len(self._first):
            self._first = memoryview(b"")  # read past: no need to hold it any more
        handle = self._info.handle
        found = await self._get(handle, offset, offset + max_bytes)
        if found is None:
            raise NotFoundError(
                "the object was deleted while it was being read", store=self._store, handle=handle
            )
        record, data = found
        if record != self._record:
            raise PreconditionFailedError(
                "the object was replaced while it was being read", store=self._store, handle=handle
            )
        return bytes(data)

    async def _close(self) -> None:
        self._first = memoryview(b"")
