"""Reading objects: one GET per stream, and a ranged GET again only after a seek."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from asyncstore.errors import StorageError, TransientError
from asyncstore.info import ObjectInfo
from asyncstore.streams import ReadStream
from asyncstore_s3._client import ClientLease, S3Client
from asyncstore_s3._errors import error_code

__all__ = ["ObjectRequests", "S3ReadStream", "info_from_response", "range_header"]

_SKIP = 256 << 10
"""A forward seek of at most this many bytes reads through instead of issuing a new GET."""


def range_header(start: int, end: int | None) -> str:
    """Return the HTTP ``Range`` value of the half-open ``[start, end)`` (``end`` > ``start``)."""
    return f"bytes={start}-" if end is None else f"bytes={start}-{end - 1}"


def info_from_response(handle: str, response: dict[str, Any]) -> ObjectInfo:
    """Build `ObjectInfo` from a GetObject or HeadObject response.

    A ranged GET carries the whole object's size in ``Content-Range`` (``bytes a-b/size``).
    """
    size = int(response.get("ContentLength") or 0)
    content_range = response.get("ContentRange")
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        if total.isdigit():
            size = int(total)
    modified = response.get("LastModified")
    if isinstance(modified, datetime):
        modified = modified.astimezone(timezone.utc)
    return ObjectInfo(
        handle=handle,
        size=size,
        modified=modified,
        etag=response.get("ETag"),
        content_type=response.get("ContentType"),
        metadata=dict(response.get("Metadata") or {}),
    )


class S3ReadStream(ReadStream):
    """A stream of an S3 object that keeps one GET response body open while reading on.

    Sequential reads consume the open body; a seek backwards (or far forwards) closes it and
    issues a ranged GET from the new position to the end of the stream, conditional on the
    object's ETag so a replaced object is never mixed with the old one.
    """

    def __init__(
        self,
        info: ObjectInfo,
        *,
        start: int,
        end: int | None,
        lease: ClientLease,
        opener: Callable[..., Any],
        body: Any = None,
        errors: Callable[[], AbstractContextManager[None]],
    ) -> None:
        super().__init__(info, start=start, end=end)
        self._lease: ClientLease | None = lease
        self._opener = opener
        self._body = body
        self._body_pos = self._offset
        self._stop = self._offset + self._size
        self._errors = errors

    async def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes (all that remain if ``n`` is negative); b"" at the end."""
        remaining = self._size - self._pos
        if not self._closed and remaining > 0 and (n is None or n < 0 or n >= remaining):
            # Everything that remains: take the body's bytes as they are, with no copy into a
            # buffer of our own (botocore checks the length and checksum as it finishes).
            with self._errors():
                body = await self._body_at(self._offset + self._pos)
                data: bytes = await body.read()
                self._body = None
                if len(data) != remaining:
                    raise TransientError("the object ended early while it was being read")
            self._pos += remaining
            self._body_pos += remaining
            return data
        return await super().read(n)

    async def _read_at(self, offset: int, max_bytes: int) -> bytes:
        with self._errors():
            body = await self._body_at(offset)
            data: bytes = await body.read(max_bytes)
            if not data:
                raise TransientError("the object ended early while it was being read")
            self._body_pos += len(data)
            if self._body_pos >= self._stop:
                await self._finish_body()
        return data

    async def _body_at(self, offset: int) -> Any:
        body = self._body
        if body is not None and offset != self._body_pos:
            gap = offset - self._body_pos
            if 0 < gap <= _SKIP:
                while self._body_pos < offset:
                    skipped = await body.read(min(offset - self._body_pos, 65536))
                    if not skipped:
                        break
                    self._body_pos += len(skipped)
            if self._body_pos != offset:
                body.close()
                body = self._body = None
        if body is None:
            if self._lease is None:  # pragma: no cover - the base class checks closed streams
                raise StorageError("the stream is closed")
            body = self._body = await self._opener(self._lease, offset, self._stop)
            self._body_pos = offset
        return body

    async def _finish_body(self) -> None:
        # One more read at the end lets botocore check the length and the object's checksum
        # (it raises if they do not match) and hands the connection back to the pool.
        body, self._body = self._body, None
        if body is not None:
            await body.read(1)
            body.close()

    async def _close(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            body.close()
        lease, self._lease = self._lease, None
        if lease is not None:
            await lease.give_back()


class ObjectRequests:
    """The GET and HEAD requests of one object, with their parameters and error mapping.

    Args:
        bucket: The bucket.
        key: The full S3 key (prefix included).
        handle: The handle named in errors and in `ObjectInfo`.
        extra: Parameters every request on the object carries (SSE-C).
        errors: Returns the error-mapping context manager of the object.
    """

    def __init__(
        self,
        *,
        bucket: str,
        key: str,
        handle: str,
        extra: dict[str, Any],
        errors: Callable[[], AbstractContextManager[None]],
    ) -> None:
        self._params = {"Bucket": bucket, "Key": key, **extra}
        self._handle = handle
        self._errors = errors

    async def head(self, client: S3Client) -> ObjectInfo:
        """Describe the object with one HEAD request."""
        with self._errors():
            response = await client.head_object(**self._params)
        return info_from_response(self._handle, dict(response))

    async def get(
        self, client: S3Client, start: int, end: int | None, *, etag: str | None = None
    ) -> dict[str, Any] | None:
        """Send the GET of ``[start, end)``; return None if the range is not satisfiable."""
        params = dict(self._params)
        if start > 0 or end is not None:
            params["Range"] = range_header(start, end)
        if etag is not None:
            # A ranged GET after a seek must read the same object as the first one.
            params["IfMatch"] = etag
        with self._errors():
            try:
                return dict(await client.get_object(**params))
            except ClientError as exc:
                if error_code(exc)[0] == "InvalidRange":
                    return None
                raise

    async def open_stream(self, lease: ClientLease, start: int, end: int | None) -> S3ReadStream:
        """Open a stream of ``[start, end)``: one GET, or one HEAD for an empty range.

        The stream holds ``lease`` and gives it back when closed.
        """
        response = None
        if end is None or end > start:
            response = await self.get(lease.client, start, end)
        if response is None:
            # An empty range, or one starting past the end: only the description is needed.
            info = await self.head(lease.client)
            body = None
        else:
            info = info_from_response(self._handle, response)
            body = response["Body"]
        return S3ReadStream(
            info,
            start=start,
            end=end,
            lease=lease,
            opener=partial(self._reopen, etag=info.etag),
            body=body,
            errors=self._errors,
        )

    async def _reopen(self, lease: ClientLease, offset: int, stop: int, *, etag: str | None) -> Any:
        response = await self.get(lease.client, offset, stop, etag=etag)
        if response is None:  # pragma: no cover - the stream never asks past its end
            raise StorageError("the object shrank while it was being read")
        return response["Body"]
