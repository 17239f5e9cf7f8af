"""Reading objects: one GET per stream, and a ranged GET again only after a seek or a break."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from functools import partial
from typing import Any

import aiohttp
import anyio
from botocore.compat import HAS_CRT, has_minimum_crt_version
from botocore.exceptions import (
    ClientError,
    FlexibleChecksumError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.httpchecksum import Crc32Checksum, Sha1Checksum, Sha256Checksum

from asyncstore.errors import PreconditionFailedError, StorageError, TransientError
from asyncstore.info import ObjectInfo
from asyncstore.streams import ReadStream
from asyncstore_s3._client import ClientLease, S3Client
from asyncstore_s3._errors import error_code
from asyncstore_s3._metadata import decode_metadata, read_content_type

__all__ = [
    "ObjectRequests",
    "S3ReadStream",
    "info_from_response",
    "range_header",
    "whole_object_check",
]

_SKIP = 256 << 10
"""A forward seek of at most this many bytes reads through instead of issuing a new GET."""


class _EarlyEnd(Exception):
    """A response body ended before the bytes the stream expects from it."""


# Ways a response body breaks that a ranged GET from the same position recovers from: the
# connection is reset, stalls, or closes before the body's Content-Length (aiohttp raises
# ClientPayloadError; botocore raises IncompleteReadError where it counts the bytes itself).
_BROKEN_BODY = (
    aiohttp.ClientPayloadError,
    aiohttp.ClientConnectionError,
    asyncio.TimeoutError,
    ReadTimeoutError,
    ResponseStreamingError,
    IncompleteReadError,
    _EarlyEnd,
)
# aiobotocore reads the body of a GetObject *error* response outside botocore's retry loop, so
# a connection breaking there escapes unretried.
_UNRETRIED = (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, asyncio.TimeoutError)
_BROKEN = object()
"""What `ObjectRequests._get_once` returns for such a break."""


_CHECKSUMS: dict[str, Callable[[], Any]] = {
    "ChecksumCRC32": Crc32Checksum,
    "ChecksumSHA1": Sha1Checksum,
    "ChecksumSHA256": Sha256Checksum,
}
"""The object checksums whole reads are checked against, by response field: CRC32C and
CRC64NVME (S3's default for objects stored without a checksum) only with awscrt installed,
as for botocore's own check."""
if HAS_CRT:  # awscrt is optional (botocore[crt]); the versions are botocore's own
    from botocore.httpchecksum import CrtCrc32cChecksum, CrtCrc64NvmeChecksum

    _CHECKSUMS["ChecksumCRC32C"] = CrtCrc32cChecksum
    if has_minimum_crt_version((0, 23, 4)):
        _CHECKSUMS["ChecksumCRC64NVME"] = CrtCrc64NvmeChecksum


def whole_object_check(response: dict[str, Any]) -> tuple[Any, str] | None:
    """Return a fresh checksum and the value the object's bytes must give it, or None.

    None when the GET response carries no checksum of the whole object: none at all, or
    only a checksum of its parts' checksums (``value-N``), which no reader can recompute.
    """
    if response.get("ChecksumType") == "COMPOSITE":
        return None
    for field, checksum in _CHECKSUMS.items():
        value = response.get(field)
        if isinstance(value, str) and value and "-" not in value:
            return checksum(), value
    return None


def range_header(start: int, end: int | None) -> str:
    """Return the HTTP ``Range`` value of the half-open ``[start, end)`` (``end`` > ``start``)."""
    return f"bytes={start}-" if end is None else f"bytes={start}-{end - 1}"


def info_from_response(handle: str, response: dict[str, Any]) -> ObjectInfo:
    """Build `ObjectInfo` from a GetObject or HeadObject response.

    A ranged GET carries the whole object's size in ``Content-Range`` (``bytes a-b/size``).
    The content type and metadata are read back as `asyncstore_s3._metadata` stores them.
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
        content_type=read_content_type(response.get("ContentType")),
        metadata=decode_metadata(response.get("Metadata")),
    )


class S3ReadStream(ReadStream):
    """A stream of an S3 object that keeps one GET response body open while reading on.

    Sequential reads consume the open body; a seek backwards (or far forwards) closes it and
    issues a ranged GET from the new position to the end of the stream, conditional on the
    object's ETag so a replaced object is never mixed with the old one. Every byte is counted
    against the length expected: a body that breaks off (a reset connection, a stall past the
    read timeout, a body cut short of its Content-Length) is resumed the same way from the
    first missing byte, up to the store's ``max_attempts`` times in a row without progress,
    then `TransientError` is raised: a stream never ends before its last byte.

    A stream of the whole object read in order (resumed or not) is checked against the
    object's checksum (``check``, from the first response; ignored by a ranged stream) as its
    last byte arrives; a mismatch raises `IntegrityError` instead of returning that byte. Once
    it seeks, it cannot be: S3 keeps no checksum of a range.
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
        check: tuple[Any, str] | None = None,
    ) -> None:
        super().__init__(info, start=start, end=end)
        self._lease: ClientLease | None = lease
        self._opener = opener
        self._body = body
        self._body_pos = self._offset
        self._stop = self._offset + self._size
        self._errors = errors
        self._attempts = lease.options.max_attempts
        self._broken = False
        self._resumes = 0
        whole = self._offset == 0 and self._size == info.size
        self._check: Any = None
        self._expected = ""
        if check is not None and whole:
            self._check, self._expected = check
        self._checked = 0  # the bytes fed to the check so far, from the object's first
        self._mismatch = False  # once the check failed, every later read fails too

    @property
    def resumes(self) -> int:
        """How many times a broken response body was resumed with a ranged GET."""
        return self._resumes

    async def read(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes (all that remain if ``n`` is negative); b"" at the end."""
        if self._mismatch:
            self._fail_check()
        remaining = self._size - self._pos
        if not self._closed and remaining > 0 and (n is None or n < 0 or n >= remaining):
            data = await self._read_rest(remaining)
            if data is not None:
                self._verify(self._offset + self._pos, data)
                self._pos += remaining
                self._body_pos += remaining
                return data
            # The body broke off: the base class reads on piece by piece, resuming as it goes.
        return await super().read(n)

    async def _read_rest(self, remaining: int) -> bytes | None:
        """Read everything that remains from one body; None if the body broke off."""
        with self._errors():
            body = await self._body_at(self._offset + self._pos)
            try:
                # The body's bytes as they are, with no copy into a buffer of our own.
                data: bytes = await body.read()
                if len(data) != remaining:
                    raise _EarlyEnd
            except _BROKEN_BODY:
                self._break_body()
                return None
            self._body = None
        return data

    async def _read_at(self, offset: int, max_bytes: int) -> bytes:
        if self._mismatch:
            self._fail_check()
        failures = 0
        while True:
            with self._errors():
                body = await self._body_at(offset)
                try:
                    data: bytes = await body.read(max_bytes)
                    if not data:
                        raise _EarlyEnd
                except _BROKEN_BODY as exc:
                    self._break_body()
                    failures += 1
                    if failures < self._attempts:
                        continue
                    raise TransientError(
                        f"the object's body broke off {failures} times in a row at byte {offset}"
                    ) from exc
                self._body_pos += len(data)
                if self._body_pos >= self._stop:
                    await self._finish_body()
            self._verify(offset, data)
            return data

    def _verify(self, offset: int, data: bytes) -> None:
        """Feed bytes read in order to the object's checksum; check it at the last byte."""
        check = self._check
        if check is None:
            return
        if offset != self._checked:  # a seek: the bytes are no longer read in order
            self._check = None
            return
        check.update(data)
        self._checked += len(data)
        if self._checked >= self.info.size:
            self._check = None
            if check.b64digest() != self._expected:
                self._mismatch = True
                self._fail_check()

    def _fail_check(self) -> None:
        with self._errors():
            raise FlexibleChecksumError(
                error_msg="the downloaded bytes do not match the object's checksum"
            )

    def _break_body(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            body.close()
        self._broken = True

    async def _body_at(self, offset: int) -> Any:
        body = self._body
        if body is not None and offset != self._body_pos:
            gap = offset - self._body_pos
            if 0 < gap <= _SKIP:
                try:
                    while self._body_pos < offset:
                        skipped = await body.read(min(offset - self._body_pos, 65536))
                        if not skipped:
                            break
                        self._body_pos += len(skipped)
                except _BROKEN_BODY:
                    self._broken = True  # the GET from the offset below resumes it
            if self._body_pos != offset:
                body.close()
                body = self._body = None
        if body is None:
            if self._lease is None:  # pragma: no cover - the base class checks closed streams
                raise StorageError("the stream is closed")
            if self._broken:
                self._resumes += 1
                self._broken = False
            body = self._body = await self._opener(self._lease, offset, self._stop)
            self._body_pos = offset
        return body

    async def _finish_body(self) -> None:
        # One more read at the end sees the body's end, which hands the connection back to
        # the pool.
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

    async def head(self, client: S3Client, *, if_match: str | None = None) -> ObjectInfo:
        """Describe the object with one HEAD request (of the version ``if_match`` names)."""
        params = self._params if if_match is None else {**self._params, "IfMatch": if_match}
        with self._errors():
            response = await client.head_object(**params)
        return info_from_response(self._handle, dict(response))

    async def get(
        self,
        lease: ClientLease,
        start: int,
        end: int | None,
        *,
        etag: str | None = None,
        resuming: bool = False,
    ) -> dict[str, Any] | None:
        """Send the GET of ``[start, end)``; return None if the range is not satisfiable.

        Raises:
            PreconditionFailedError: If ``etag`` is given and the object no longer has it
                (``resuming``: a stream's later request found the object replaced).
        """
        params = dict(self._params)
        if start > 0 or end is not None:
            params["Range"] = range_header(start, end)
        if etag is not None:
            # A ranged GET after a seek or a break must read the same object as the first one.
            params["IfMatch"] = etag
        with self._errors():
            for attempt in range(1, lease.options.max_attempts):
                response = await self._get_once(lease.client, params, resuming, last=False)
                if response is not _BROKEN:
                    break
                await anyio.sleep(random.uniform(0, 0.05 * 2**attempt))
            else:
                response = await self._get_once(lease.client, params, resuming, last=True)
        return None if response is None else dict(response)

    async def _get_once(
        self, client: S3Client, params: dict[str, Any], resuming: bool, *, last: bool
    ) -> Any:
        """Send one GetObject; return its response, None for an unsatisfiable range.

        A connection that breaks unretried returns _BROKEN, unless this is the ``last`` try.
        """
        try:
            return await client.get_object(**params)
        except ClientError as exc:
            code = error_code(exc)[0]
            if code == "InvalidRange":
                return None
            bound = "IfMatch" in params
            if code in ("NoSuchKey", "NotFound", "404") and "Range" in params and not bound:
                # SeaweedFS answers a ranged GET of an empty object whose key is also a
                # prefix of others with 404, not 416: the HEAD that follows an unsatisfiable
                # range tells a missing object (NotFoundError) from an empty one.
                return None
            if code == "PreconditionFailed" and resuming:
                raise PreconditionFailedError(
                    "the object was replaced while it was being read (S3 PreconditionFailed)"
                ) from exc
            raise
        except _UNRETRIED:
            if last:
                raise
            return _BROKEN

    async def open_stream(
        self, lease: ClientLease, start: int, end: int | None, *, if_match: str | None = None
    ) -> S3ReadStream:
        """Open a stream of ``[start, end)``: one GET, or one HEAD for an empty range.

        The stream holds ``lease`` and gives it back when closed. With ``if_match`` only that
        version is opened; later requests of the stream are bound to the version it opened.
        """
        response = None
        if end is None or end > start:
            response = await self.get(lease, start, end, etag=if_match)
        if response is None:
            # An empty range, or one starting past the end: only the description is needed.
            info = await self.head(lease.client, if_match=if_match)
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
            check=None if response is None else whole_object_check(response),
        )

    async def _reopen(self, lease: ClientLease, offset: int, stop: int, *, etag: str | None) -> Any:
        response = await self.get(lease, offset, stop, etag=etag, resuming=True)
        if response is None:  # pragma: no cover - the stream never asks past its end
            raise StorageError("the object shrank while it was being read")
        return response["Body"]
